"""Every request ends by its deadline, and every one still running ends at drain's grace cut,
in a shape the client can read: a 504 (503 when draining) when no byte was sent yet, an SSE
error event when a stream is under way. Never a truncated chunked body, which a client sees as
a broken connection and cannot tell from a crash.

One pure ASGI middleware for every route (chat, responses, messages): the deadline is a
property of the request, not of a route that might forget it. The upstream's own idle timeout
(``stream_idle_timeout_s``, in the model layer) catches a silent stream sooner; this catches a
stream that trickles forever and any stage that overruns.

    app.add_middleware(Deadline, seconds=600, state=drain_state)
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson

from middleware.proxy.errors import error_body, sse_error

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _sse(path: str, status: int, message: str, code: str) -> bytes:
    """The error event in the route's own protocol."""
    if path.startswith("/v1/messages"):
        kind = "overloaded_error" if status == 503 else "timeout_error"
        return b"event: error\ndata: " + orjson.dumps({"type": "error", "error": {"type": kind, "message": message}}) + b"\n\n"
    if path.startswith("/v1/responses"):
        return b"event: error\ndata: " + orjson.dumps({"type": "error", "code": code, "message": message,
                                                       "param": None}) + b"\n\n"
    return sse_error(message, code, status)


def _json(path: str, status: int, message: str, code: str) -> bytes:
    if path.startswith("/v1/messages"):
        kind = "overloaded_error" if status == 503 else "timeout_error"
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    return orjson.dumps(error_body(status, message, code))


class Deadline:
    def __init__(self, app: Any, seconds: float, state: Any):
        self.app = app
        self.seconds = seconds
        self.state = state  # drain.DrainState: ``running`` (the timeouts to cut) and ``cutting``

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        seen = {"started": False, "sse": False, "ended": False}

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["started"] = True
                seen["sse"] = any(k == b"content-type" and v.startswith(b"text/event-stream")
                                  for k, v in message.get("headers", ()))
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                seen["ended"] = True
            await send(message)

        timeout = asyncio.timeout(self.seconds)
        try:
            async with timeout:
                self.state.running.add(timeout)
                try:
                    await self.app(scope, receive, watch)
                finally:
                    self.state.running.discard(timeout)
        except TimeoutError:
            if not timeout.expired():
                raise  # the app's own, not ours
            await self._end(scope["path"], send, seen)

    async def _end(self, path: str, send: Any, seen: dict[str, bool]) -> None:
        if seen["ended"]:
            return
        if self.state.cutting:
            status, code, message = 503, "shutting_down", "rein is shutting down and its grace period is over; retry"
        else:
            status, code, message = 504, "deadline_exceeded", f"the request ran past rein's deadline of {self.seconds:g} s"
        if not seen["started"]:
            body = _json(path, status, message, code)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif seen["sse"]:
            await send({"type": "http.response.body", "body": _sse(path, status, message, code), "more_body": False})
        else:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
