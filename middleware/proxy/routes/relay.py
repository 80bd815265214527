"""Passthrough: no stage runs and the agent relays bytes (``capabilities.relay``).

Chat completions go through the agent's chat relay (``relay``, ``relay_stream_batches``: the
completion is checked, a stream's events are passed on as they arrived); the other wire formats,
when the upstream speaks them, through ``forward``: bytes both ways, the upstream's status and
content type kept. Each inside the agent's ``chat`` span (middleware/models/instrumented.py),
under the request's ``rein.request`` span.
"""
from __future__ import annotations

import time
from typing import Any, AsyncIterator, Callable

from opentelemetry import trace
from starlette.responses import Response, StreamingResponse

from middleware import tracing
from middleware.proxy.errors import sse_error
from middleware.proxy.headers import SSE_HEADERS, overhead_ms
from middleware.redact import redact_json
from policies.chat_model import ModelError

Fault = Callable[[str, str, int], bytes]  # (message, code, status) -> the protocol's error event


async def relay_chat(agent: Any, raw: bytes, req: Any, headers: dict[str, str], base: dict[str, str],
               start: float) -> Response:
    """A chat completion, plain or streamed; ``req`` is the validated request (its model names the span)."""
    if not req.stream:
        with tracing.request_span(base["x-rein-policy"], "chat"):
            t_up = time.perf_counter()
            body, _ = await agent.relay(raw, headers, request=req)
            up_ms = (time.perf_counter() - t_up) * 1000
        return Response(body, media_type="application/json",
                        headers={**base, "x-rein-overhead-ms": overhead_ms(start, up_ms)})
    span = tracing.start_request_span(base["x-rein-policy"], "chat")
    t_up = time.perf_counter()
    source = agent.relay_stream_batches(raw, headers, request=req, parent=trace.set_span_in_context(span))
    try:
        first = await _first(source)  # errors before the first byte are plain HTTP errors
    except BaseException:
        span.end()
        raise
    up_ms = (time.perf_counter() - t_up) * 1000

    async def body() -> AsyncIterator[bytes]:
        try:
            if first is not None:
                yield _events(first)
                async for batch in source:
                    yield _events(batch)
            yield b"data: [DONE]\n\n"
        except ModelError as e:  # the wrapper marked its `chat` span failed
            yield sse_error(e.message, e.code, e.status)
        finally:
            await source.aclose()  # ends the `chat` span with the usage it read
            span.end()

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={**base, **SSE_HEADERS, "x-rein-overhead-ms": overhead_ms(start, up_ms)})


async def relay_forward(agent: Any, protocol: str, path: str, raw: bytes, data: dict[str, Any], headers: dict[str, str],
                  base: dict[str, str], start: float, fault: Fault) -> Response:
    """Another wire format (``path``: ``/responses``, ``/messages``) relayed as bytes; ``fault`` is the
    protocol's error event, for a stream that breaks off."""
    span = tracing.start_request_span(base["x-rein-policy"], protocol)
    t_up = time.perf_counter()
    try:
        answer = await agent.forward(path, raw, headers, stream=bool(data.get("stream")), model=data.get("model"),
                                     parent=trace.set_span_in_context(span))
    except BaseException:
        span.end()
        raise
    out = {**base, "x-rein-overhead-ms": overhead_ms(start, (time.perf_counter() - t_up) * 1000)}
    if answer.pieces is None:
        span.end()
        # The upstream's own error body may name its hosts: redacted like rein's.
        content = redact_json(answer.body) if answer.status >= 400 else answer.body
        return Response(content, status_code=answer.status, headers=out, media_type=answer.content_type)
    pieces = answer.pieces

    async def body() -> AsyncIterator[bytes]:
        try:
            async for piece in pieces:
                yield piece
        except ModelError as e:
            yield fault(e.message, e.code, e.status)
        finally:
            await pieces.aclose()  # ends the `chat` span
            span.end()

    return StreamingResponse(body(), media_type=answer.content_type, headers={**out, **SSE_HEADERS})


async def _first(source: AsyncIterator[Any]) -> Any:
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return None


def _events(batch: list[bytes]) -> bytes:
    """SSE events that arrived together go out in one write."""
    return b"".join([b"data: " + data + b"\n\n" for data in batch])
