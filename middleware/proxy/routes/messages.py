"""``POST /v1/messages`` (Anthropic Messages) over the same pipeline, errors in Anthropic's shape.

Credentials: the caller's ``x-api-key`` (or ``Authorization: Bearer``, which the official client
now sends) goes on as ``Authorization: Bearer`` to an OpenAI-compatible upstream when rein has no
key of its own, and unchanged, with ``anthropic-version`` / ``anthropic-beta``, when bytes relay
to an Anthropic upstream.
"""
from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

import middleware.proxy.routes.messages_map as amap
from middleware.proxy.errors import messages_error
from middleware.proxy.routes.limits import off_loop
from middleware.proxy.routes.messages_reply import MessagesEncoder, render
from middleware.proxy.routes.relay import relay_forward
from middleware.proxy.routes.route import Body, Route, Turn
from policies.chat_model import ModelResponse

_RELAYED = ("anthropic-version", "anthropic-beta")


class MessagesRoute(Route):
    protocol = "messages"
    upstream_path = "/messages"

    async def parse(self, body: Body, raw: bytes, request: Request) -> Turn:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization") or (f"Bearer {key}" if key else None)
        mreq = await off_loop(len(raw), amap.to_request, body.data, {"authorization": auth} if auth else {})
        return Turn(mreq, body.stream)

    def render(self, turn: Turn, final: ModelResponse) -> dict[str, Any]:
        return render(final, turn.request.model)

    def encoder(self, turn: Turn) -> MessagesEncoder:
        return MessagesEncoder(turn.request.model or "")

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        return messages_error(status, message, headers)

    async def relay(self, agent: Any, raw: bytes, body: Body, request: Request, base: dict[str, str],
                    start: float) -> Response:
        """Bytes both ways: the upstream speaks Messages (``upstream_protocol``) and no stage runs."""
        headers = {"content-type": "application/json"}
        if agent.api_key:
            headers["x-api-key"] = agent.api_key
        else:  # the caller's credentials, in whichever header the caller used (clients send both kinds)
            headers.update({h: request.headers[h] for h in ("x-api-key", "authorization") if h in request.headers})
        headers.update({h: request.headers[h] for h in _RELAYED if h in request.headers})
        fault = MessagesEncoder("").error
        return await relay_forward(agent, self.protocol, self.upstream_path, raw, body.data, headers, base, start, fault)


async def count_tokens(request: Request) -> Response:
    """Counting needs the upstream model's own tokenizer, which rein does not have."""
    return messages_error(501, "POST /v1/messages/count_tokens is not implemented by rein: token counts "
                               "depend on the upstream model's tokenizer; ask the upstream provider")
