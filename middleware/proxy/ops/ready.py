"""``GET /readyz``: ready only when requests can be served, and when not, why.

A load balancer polls readiness every few seconds on every replica: the upstream probe's answer
is kept ``ttl_s`` seconds and one probe at a time runs, so polling never becomes upstream load.
The upstream is probed when the agent model says how (``probe``: the fast path asks ``/models``);
``check_upstream=False`` (REIN_READY_CHECK_UPSTREAM=0) turns it off, for upstreams that meter
every call.

    readiness = Readiness(engine.agent, check_upstream=True, ttl_s=5)
    reason = await readiness.reason()     # None when ready, else e.g. "upstream unreachable"
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

log = logging.getLogger("rein.proxy")


class Readiness:
    def __init__(self, agent: Any, check_upstream: bool = True, ttl_s: float = 5.0):
        self.agent = agent
        self.probe = getattr(agent, "probe", None) if check_upstream else None
        self.ttl_s = ttl_s
        self._answer: tuple[float, str | None] | None = None  # (when, reason)
        self._lock = asyncio.Lock()

    async def reason(self) -> str | None:
        if getattr(self.agent, "available", True) is False:
            return "the embedded model is not installed"
        if self.probe is None:
            return None
        if self._fresh() is not None:
            return self._answer[1]  # type: ignore[index]
        async with self._lock:  # callers that queued behind a probe take its answer
            if self._fresh() is None:
                try:
                    answer = await self.probe()
                except Exception:  # a probe that breaks is an answer too, never a 500
                    log.warning("rein: the readiness probe failed", exc_info=True)
                    answer = "upstream probe failed"
                self._answer = (time.monotonic(), answer)
            return self._answer[1]  # type: ignore[index]

    def _fresh(self) -> tuple[float, str | None] | None:
        if self._answer is not None and time.monotonic() - self._answer[0] < self.ttl_s:
            return self._answer
        return None
