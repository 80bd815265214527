"""``POST /v1/chat/completions`` (OpenAI Chat Completions): rein's own wire format, so reading is
validating (validate.py), the reply is the pipeline's completion as it is, and a stream's events
are its chat chunks, ended by ``data: [DONE]``.
"""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from middleware.models.chunks import completion_json
from middleware.models.openai_compat import WireBody
from middleware.proxy.errors import error_response, sse_error
from middleware.proxy.routes.relay import relay_chat
from middleware.proxy.routes.limits import off_loop
from middleware.proxy.routes.route import Body, Route, Turn
from middleware.proxy.routes.validate import ChatCompletionRequest, parse_body
from policies.chat_model import ModelRequest, ModelResponse

_KNOWN = {"messages", "tools", "tool_choice", "response_format", "stream", "model"}


def model_request(data: dict[str, Any], req: ChatCompletionRequest, headers: dict[str, str]) -> ModelRequest:
    return ModelRequest(
        messages=req.messages, model=req.model,
        # The validated tools dumped back are the client's dicts: take those (14 tool specs cost 0.1 ms to dump).
        tools=data["tools"] if req.tools is not None else None,
        tool_choice=data.get("tool_choice"), response_format=data.get("response_format"),
        extra={k: v for k, v in data.items() if k not in _KNOWN}, headers=headers)


def _authorization(request: Request) -> dict[str, str]:
    return {"authorization": request.headers["authorization"]} if "authorization" in request.headers else {}


class ChatEncoder:
    """Chat chunks go out as they are."""

    closing = b"data: [DONE]\n\n"

    def chunk(self, c: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(c) + b"\n\n"

    def finish(self, state: dict[str, Any]) -> bytes:
        return b""

    def error(self, message: str, code: str, status: int) -> bytes:
        return sse_error(message, code, status)

    def body(self) -> dict[str, Any]:
        return {}


class ChatRoute(Route):
    protocol = "chat"
    upstream_path = "/chat/completions"

    async def read(self, raw: bytes) -> Body:
        data, req = await off_loop(len(raw), parse_body, raw)
        return Body(data, req.stream, req)

    async def parse(self, body: Body, raw: bytes, request: Request) -> Turn:
        mreq = model_request(body.data, body.parsed, _authorization(request))
        if not body.stream:
            mreq.wire = WireBody.of_request(raw, mreq)  # no stage changed it: these bytes go up (models/openai_compat.py)
        return Turn(mreq, body.stream)

    def render(self, turn: Turn, final: ModelResponse) -> dict[str, Any]:
        return completion_json(final, turn.request.model)

    def encoder(self, turn: Turn) -> ChatEncoder:
        return ChatEncoder()

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        return error_response(status, message, code, param, headers)

    async def relay(self, agent: Any, raw: bytes, body: Body, request: Request, base: dict[str, str],
                    start: float) -> Response:
        return await relay_chat(agent, raw, body.parsed, _authorization(request), base, start)
