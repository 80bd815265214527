"""Slow-header guard for ``rein serve``: uvicorn's HTTP protocol with a header-read timeout and a
cap on connections that wait for a request.

uvicorn has no timeout on reading request headers: its keep-alive timer is cancelled by every
byte received, so a client that trickles a header a byte at a time holds its connection forever
(300 such connections stayed open 25 s, and at a file limit of 256 every normal request failed
meanwhile). ASGI middleware cannot help: it runs once the headers are complete. So this is the
server's own protocol class, with two rules:

- a connection's request headers must be complete ``header_timeout_s`` after it opened, or after
  its previous response ended; otherwise the connection is closed;
- at most ``max_idle`` connections of this process may wait for a request (no request running on
  them); past that, the one that has waited longest is closed. Connections with a request in
  flight (streams included) are never counted or closed here.

``rein serve`` passes the class to uvicorn by import path (``http=``), so worker processes load it
too, and sets the two values with ``configure`` in each process before it serves.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

log = logging.getLogger("rein.ops")
IMPORT_PATH = "middleware.proxy.ops.conn_guard:GuardedHTTP"


class GuardedHTTP(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    header_timeout_s: float = 10.0
    max_idle: int = 256
    # Connections waiting for a request's headers, oldest first (one event loop per process).
    waiting: OrderedDict[Any, None] = OrderedDict()

    @classmethod
    def configure(cls, header_timeout_s: float, max_idle: int) -> None:
        cls.header_timeout_s = header_timeout_s
        cls.max_idle = max_idle

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm()
        if len(self.waiting) > self.max_idle:
            self._shed()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request's headers get the same time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # ---- the rules --------------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._armed_cycle = self.cycle  # a new request replaces ``cycle``: that is how progress shows
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._expire)
        self.waiting[self] = None

    def _disarm(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None
        self.waiting.pop(self, None)

    def _idle(self) -> bool:
        """No request began since the timer was armed, and none is still being answered."""
        cycle = self.cycle
        return cycle is self._armed_cycle and (cycle is None or cycle.response_complete)

    def _expire(self) -> None:
        self._header_timer = None
        self.waiting.pop(self, None)
        if self._idle() and not self.transport.is_closing():
            log.debug("rein: closing a connection whose request headers did not arrive in %gs", self.header_timeout_s)
            self.transport.close()

    def _shed(self) -> None:
        for conn in list(self.waiting):  # forget those that have a request running since
            if not conn._idle() or conn.transport.is_closing():
                self.waiting.pop(conn, None)
        while len(self.waiting) > self.max_idle:
            oldest, _ = self.waiting.popitem(last=False)
            log.debug("rein: more than %d idle connections; closing the longest waiting", self.max_idle)
            oldest._disarm()
            oldest.transport.close()
