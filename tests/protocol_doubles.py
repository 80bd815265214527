"""Test helpers for the Responses and Messages routes: the official clients in-process, and an
upstream that also answers ``/v1/responses`` and ``/v1/messages`` (for the byte relay)."""
from __future__ import annotations

import json
from typing import Any

import orjson
from aiohttp import web
from fake_upstream import FakeUpstream, Seen, asgi_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.proxy import create_app
from policies.loader import load_policy
from policies.chat_model import ModelRequest

WEATHER_FN = {"type": "function", "name": "get_weather", "description": "Weather for a city", "strict": False,
              "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WEATHER_ANTHROPIC = {"name": "get_weather", "description": "Weather for a city",
                     "input_schema": WEATHER_FN["parameters"]}


def app_for(agent, policy: str = "structural", **settings: Any):
    # rein's own model is a script with no replies: a test that reached it would fail open and say so.
    from middleware.models import ScriptedModel

    return create_app(Settings(policy=policy, **settings), Engine(agent, load_policy(policy), rein_model=ScriptedModel([])))


def anthropic_client(app: Any, api_key: str = "sk-ant-caller"):
    """The official ``anthropic`` client pointed at an in-process rein app (it requires httpx2)."""
    import anthropic
    import httpx2

    http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://rein.test")
    return anthropic.AsyncAnthropic(base_url="http://rein.test", api_key=api_key, max_retries=0, http_client=http)


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs of an SSE body."""
    out = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in lines:
            out.append((lines.get("event", ""), json.loads(lines["data"])))
    return out


def last_text(request: ModelRequest) -> str:
    content = request.messages[-1].content
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content or [])


class ProtocolUpstream(FakeUpstream):
    """The fake upstream, also speaking Responses and Messages with fixed answers."""

    RESPONSE = {"id": "resp_upstream", "object": "response", "status": "completed", "model": "up", "vendor": "kept",
                "output": [{"type": "message", "id": "msg_up", "status": "completed", "role": "assistant",
                            "content": [{"type": "output_text", "text": "from upstream", "annotations": []}]}],
                "usage": {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}}
    MESSAGE = {"id": "msg_upstream", "type": "message", "role": "assistant", "model": "up", "stop_reason": "end_turn",
               "content": [{"type": "text", "text": "from upstream"}], "vendor": "kept",
               "usage": {"input_tokens": 1, "output_tokens": 2}}

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.app.router.add_post("/v1/responses", self.responses)
        self.app.router.add_post("/v1/messages", self.messages)

    async def _answer(self, request: web.Request, body: dict[str, Any], events: list[tuple[str, dict]]) -> web.StreamResponse:
        data = orjson.loads(await request.read())
        self.requests.append(Seen(data, {k.lower(): v for k, v in request.headers.items()}))
        if data.get("model") == "fake-400":
            return web.json_response({"type": "error", "error": {"type": "invalid_request_error", "message": "no"}},
                                     status=400)
        if not data.get("stream"):
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for name, event in events:
            await resp.write(b"event: " + name.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n")
        await resp.write_eof()
        return resp

    async def responses(self, request: web.Request) -> web.StreamResponse:
        done = {"type": "response.completed", "sequence_number": 0, "response": self.RESPONSE}
        return await self._answer(request, self.RESPONSE, [("response.completed", done)])

    async def messages(self, request: web.Request) -> web.StreamResponse:
        start = {"type": "message_start", "message": {**self.MESSAGE, "content": []}}
        return await self._answer(request, self.MESSAGE, [("message_start", start),
                                                          ("message_stop", {"type": "message_stop"})])


__all__ = ["ProtocolUpstream", "WEATHER_ANTHROPIC", "WEATHER_FN", "anthropic_client", "app_for", "asgi_client",
           "last_text", "sse"]
