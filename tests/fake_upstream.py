"""A small fake OpenAI-compatible upstream on 127.0.0.1, for tests and benchmarks.

The ``model`` field of each request picks the behaviour, so the same server serves a
normal turn and every fault, in-process or as a separate process:

- anything else: an answer. With tools and a user turn last, a call to the first tool;
  after a tool result, a reply quoting it; otherwise ``Echo: <last user text>``.
- ``fake-500``: HTTP 500 with an OpenAI error body.
- ``fake-429``: HTTP 429 with ``Retry-After: 7``.
- ``fake-slow``: the answer, after ``slow_s`` seconds.
- ``fake-garbage``: HTTP 200 whose body is JSON but not a completion (no ``choices``).
- ``fake-html``: HTTP 200 whose body is not JSON at all.
- ``fake-break``: a stream that sends two chunks and then drops the connection.
- ``fake-stall``: a stream that sends one chunk and then goes silent for ``slow_s`` seconds.
- ``fake-trickle``: a stream that sends a chunk (".") every 0.1 s and never ends.

Example::

    async with FakeUpstream() as up:          # in-process, on the running loop
        OpenAICompatModel(up.base_url)         # -> http://127.0.0.1:<port>/v1
        up.requests[-1].body, up.requests[-1].headers

    python tests/fake_upstream.py --port 9100  # as a process (prints "ready <url>")
"""
from __future__ import annotations

import argparse
import asyncio
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

REPLY_MODEL = "fake-model"


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message this fake answers with (deterministic, from the request)."""
    messages = body.get("messages") or [{}]
    last = messages[-1]
    tools = body.get("tools") or []
    if last.get("role") == "tool":
        return {"role": "assistant", "content": f"The tool said: {_text(last.get('content'))}"}
    if tools and body.get("tool_choice") != "none":
        name = tools[0]["function"]["name"]
        args = orjson.dumps({"query": _text(last.get("content"))}).decode()
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": f"call_{len(messages)}", "type": "function", "function": {"name": name, "arguments": args}}]}
    return {"role": "assistant", "content": f"Echo: {_text(last.get('content'))}"}


def usage_of(body: dict[str, Any], message: dict[str, Any]) -> dict[str, int]:
    prompt = sum(len(_text(m.get("content")).split()) for m in body.get("messages") or [])
    completion = len(_text(message.get("content")).split()) or 1
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def completion(body: dict[str, Any]) -> dict[str, Any]:
    message = answer(body)
    return {"id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
            "model": REPLY_MODEL, "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": "tool_calls" if message.get("tool_calls") else "stop"}],
            "usage": usage_of(body, message)}


def stream_chunks(body: dict[str, Any]) -> list[dict[str, Any]]:
    message = answer(body)
    base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": REPLY_MODEL, "system_fingerprint": "fp_fake"}

    def c(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [c({"role": "assistant", "content": ""})]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        out.append(c({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                      "function": {"name": call["function"]["name"], "arguments": ""}}]}))
        out.append(c({"tool_calls": [{"index": 0, "function": {"arguments": call["function"]["arguments"]}}]}))
        out.append(c({}, "tool_calls"))
    else:
        words = message["content"].split(" ")
        out += [c({"content": w if i == 0 else " " + w}) for i, w in enumerate(words)]
        out.append(c({}, "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append({**base, "choices": [], "usage": usage_of(body, message)})
    return out


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


class FakeUpstream:
    def __init__(self, slow_s: float = 2.0, host: str = "127.0.0.1", port: int = 0, record: bool = True):
        self.slow_s = slow_s
        self.host = host
        self.port = port
        self.record = record
        self.requests: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    async def start(self) -> "FakeUpstream":
        if not self.port:
            self.port = free_port()
        # Short shutdown: a test that stops mid-fault (a slow or stalled reply) need not wait it out.
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "FakeUpstream":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": REPLY_MODEL, "object": "model", "owned_by": "fake"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if self.record:
            self.requests.append(Seen(body, {k.lower(): v for k, v in request.headers.items()}))
        model = str(body.get("model") or "")
        if model == "fake-500":
            return _error(500, "the fake upstream fell over")
        if model == "fake-429":
            return _error(429, "slow down", {"Retry-After": "7"})
        if model == "fake-garbage":
            return web.Response(body=b'{"id": "x", "object": "chat.completion", "note": "no choices"}',
                                content_type="application/json")
        if model == "fake-html":
            return web.Response(body=b"<html>502 Bad Gateway</html>", content_type="application/json")
        if model == "fake-slow":
            await asyncio.sleep(self.slow_s)
        if body.get("stream"):
            return await self._stream(request, body, model)
        return web.Response(body=orjson.dumps(completion(body)), content_type="application/json")

    async def _stream(self, request: web.Request, body: dict[str, Any], model: str) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        chunks = stream_chunks(body)
        if model == "fake-break":
            await resp.write(_sse(chunks[0]) + _sse(chunks[1]))
            await asyncio.sleep(0.05)
            request.transport.abort()  # chunked body left unterminated: the connection just drops
            return resp
        if model == "fake-trickle":
            while True:  # never idle, never done: only a total deadline ends it
                await resp.write(_sse({**chunks[1], "choices": [{"index": 0, "delta": {"content": "."},
                                                                  "finish_reason": None}]}))
                await asyncio.sleep(0.1)
        if model == "fake-stall":
            await resp.write(_sse(chunks[0]))
            await asyncio.sleep(self.slow_s)
        await resp.write(b"".join(_sse(c) for c in chunks) + b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": message, "type": "server_error" if status >= 500 else "rate_limit_error",
                      "param": None, "code": None}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json", headers=headers)


class ThreadedUpstream:
    """The fake on its own event loop in a daemon thread, for sync tests and subprocess clients."""

    def __init__(self, **options: Any):
        self.fake = FakeUpstream(**options)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.fake.start(), self._loop).result(10)
        return self.fake

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def asgi_client(app: Any, **options: Any):
    """An httpx client that drives an ASGI app in-process (no socket on rein's side)."""
    import httpx

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test", **options)


def openai_client(app: Any, api_key: str = "sk-caller", **options: Any):
    """The official ``openai`` client pointed at an in-process rein app."""
    import openai

    return openai.AsyncOpenAI(base_url="http://rein.test/v1", api_key=api_key, max_retries=0,
                              http_client=asgi_client(app), **options)


def main() -> None:
    p = argparse.ArgumentParser(description="Run the fake OpenAI-compatible upstream.")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--slow-s", type=float, default=2.0)
    args = p.parse_args()
    async def serve() -> None:
        up = await FakeUpstream(slow_s=args.slow_s, port=args.port, record=False).start()
        print(f"ready {up.base_url}", flush=True)
        await asyncio.Event().wait()

    try:
        try:
            import uvloop
        except ImportError:
            asyncio.run(serve())
        else:
            uvloop.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
