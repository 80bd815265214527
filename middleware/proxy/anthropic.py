"""``POST /v1/messages`` (Anthropic Messages) over the same pipeline, errors in Anthropic's shape.

Credentials: the caller's ``x-api-key`` (or ``Authorization: Bearer``, which the official client
now sends) goes on as ``Authorization: Bearer`` to an OpenAI-compatible upstream when rein has no
key of its own, and unchanged, with ``anthropic-version`` / ``anthropic-beta``, when bytes relay
to an Anthropic upstream.
"""
from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from middleware.models.openai_compat import OpenAICompatModel
from middleware.proxy import anthropic_map as amap
from middleware.proxy.anthropic_stream import MessagesEncoder
from middleware.proxy.limits import off_loop
from middleware.proxy.protocol import ProtocolRoute, Turn
from policies.chat_model import ModelResponse

_RELAYED = ("anthropic-version", "anthropic-beta")


def anthropic_error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(amap.error_body(status, message)), status_code=status,
                    media_type="application/json", headers=headers)


class MessagesRoute(ProtocolRoute):
    protocol = "messages"
    upstream_path = "/messages"

    async def parse(self, data: dict[str, Any], request: Request) -> Turn:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization") or (f"Bearer {key}" if key else None)
        mreq = await off_loop(getattr(request.state, "rein_body_bytes", 0), amap.to_request, data,
                              {"authorization": auth} if auth else {})
        return Turn(mreq, bool(data.get("stream")))

    def render(self, turn: Turn, final: ModelResponse, owned: set[str]) -> dict[str, Any]:
        return amap.render(final, turn.request.model, owned)

    def encoder(self, turn: Turn, owned: set[str]) -> MessagesEncoder:
        return MessagesEncoder(turn.request.model or "")

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        return anthropic_error(status, message, headers)

    def relay_headers(self, request: Request, agent: OpenAICompatModel) -> dict[str, str]:
        out = {"content-type": "application/json"}
        if agent.api_key:
            out["x-api-key"] = agent.api_key
        else:  # the caller's credentials, in whichever header the caller used (clients send both kinds)
            out.update({h: request.headers[h] for h in ("x-api-key", "authorization") if h in request.headers})
        out.update({h: request.headers[h] for h in _RELAYED if h in request.headers})
        return out


async def count_tokens(request: Request) -> Response:
    """Counting needs the upstream model's own tokenizer, which rein does not have."""
    return anthropic_error(501, "POST /v1/messages/count_tokens is not implemented by rein: token counts "
                                    "depend on the upstream model's tokenizer; ask the upstream provider")
