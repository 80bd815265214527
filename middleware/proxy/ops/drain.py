"""Graceful shutdown: ``Drain`` (pure ASGI) and the state it shares with the SIGTERM hook and
deadline.py (the requests to end readably once the grace period is over)."""
from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from typing import Any, Callable

from middleware.proxy.ops.guards import OPEN_PATHS, ASGIApp, Message, Receive, Scope, Send, send_error

log = logging.getLogger("rein.ops")


class DrainState:
    """In-flight request count and the draining flag, shared by the middleware and the signal hook."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False
        self.cutting = False
        self.running: set[Any] = set()  # each request's asyncio.timeout (deadline.Deadline)

    def cut(self) -> None:
        """End every request still running now: each ends with an error the client can read."""
        self.cutting = True
        now = asyncio.get_running_loop().time()
        for timeout in list(self.running):
            timeout.reschedule(now)

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.in_flight == 0


class Drain:
    """Graceful shutdown. On SIGTERM (hooked at lifespan start-up, when ``hook_signals``):
    /readyz turns 503 so the load balancer stops routing here, new requests get 503 with
    ``connection: close``, and only once the in-flight ones (streams included) have finished,
    or ``timeout_s`` passed, does the server's own shutdown begin."""

    def __init__(self, app: ASGIApp, state: DrainState, timeout_s: float = 30.0, hook_signals: bool = False,
                 on_startup: Callable[[], None] | None = None, limit: int | None = None):
        self.app = app
        self.state = state
        self.limit = limit
        self.timeout_s = timeout_s
        self.hook_signals = hook_signals
        self.on_startup = on_startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, self._lifespan(receive), send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.state.draining and scope["path"] != "/healthz":
            return await send_error(send, 503, "rein is shutting down; retry on another replica",
                                    "shutting_down", {"connection": "close", "retry-after": "1"}, scope)
        if self.limit is not None and self.state.in_flight >= self.limit and scope["path"] not in OPEN_PATHS:
            return await send_error(send, 503, f"rein is at its limit of {self.limit} concurrent requests",
                                    "overloaded", {"retry-after": "1"}, scope)
        self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1

    def _lifespan(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.hook_signals:
                    self.install(asyncio.get_running_loop())
                if self.on_startup is not None:
                    self.on_startup()
            return message
        return wrapped

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Put the drain in front of the server's SIGTERM handler (uvicorn's, in each worker)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):  # the server handles no SIGTERM itself: nothing to put a drain before
            return

        def on_term(sig: int, frame: Any) -> None:
            if self.state.draining:  # a second SIGTERM: stop now
                return previous(sig, frame)
            self.state.draining = True
            log.warning("rein: draining %d in-flight request(s) before shutdown", self.state.in_flight)

            async def finish() -> None:
                if not await self.state.wait_idle(self.timeout_s):
                    # The server's own shutdown would cancel them mid-body: end them readably first.
                    log.warning("rein: drain grace period over; ending %d request(s) with an error event",
                                self.state.in_flight)
                    self.state.cut()
                    await self.state.wait_idle(5.0)
                previous(sig, frame)

            loop.call_soon_threadsafe(lambda: loop.create_task(finish()))

        signal.signal(signal.SIGTERM, on_term)
