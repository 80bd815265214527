"""The fast path's relay of the other wire formats: under ``passthrough``, when the upstream also
speaks OpenAI Responses or Anthropic Messages, the proxy sends a request's bytes to that endpoint
and hands back the upstream's answer as it came, whatever its status (the proxy redacts an error
body). ``OpenAICompatModel.forward`` calls this with itself; ``Instrumented.forward`` puts the
call in the agent's ``chat`` span like every other model call.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, NamedTuple

import aiohttp

from policies.chat_model import ModelError

log = logging.getLogger("rein.upstream")


class Forwarded(NamedTuple):
    status: int
    content_type: str
    body: bytes | None = None
    pieces: AsyncIterator[bytes] | None = None  # a stream's bytes as they arrive; the response is released at the end


async def forward(model: Any, path: str, body: bytes, headers: dict[str, str], stream: bool = False) -> Forwarded:
    """POST ``body`` to ``model.base_url + path`` over the model's pool and timeouts."""
    url = model.base_url + path
    try:
        resp = await model.pool.session().post(url, data=body, headers=headers, timeout=model._timeout(None, stream))
        if not stream or resp.status >= 400:
            async with resp:
                return Forwarded(resp.status, resp.headers.get("content-type", "application/json"), await resp.read())
    except asyncio.TimeoutError:
        raise ModelError("upstream timed out", 504, "upstream_timeout") from None
    except aiohttp.ClientError as e:
        raise model._unreachable(e) from None
    return Forwarded(resp.status, resp.headers.get("content-type", "text/event-stream"), None, _pieces(resp, url))


async def _pieces(resp: aiohttp.ClientResponse, url: str) -> AsyncIterator[bytes]:
    try:
        async for piece in resp.content.iter_any():
            yield piece
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        log.warning("upstream %s: stream broke off: %r", url, e)
        raise ModelError("the upstream's stream broke off", 502, "upstream_stream_broken") from None
    finally:
        resp.release()
