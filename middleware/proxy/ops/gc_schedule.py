"""Collections off the request path, for ``rein serve`` (issue 24).

CPython's collector runs where an allocation happens to cross a threshold: inside a request. Its
full (generation 2) passes walk every tracked object that is not frozen, and a busy proxy keeps
tens of thousands of them (the refiners' bounded caches of facts read from tool results): under
load a full pass took 200-400 ms, every 2-3 s (``bench/load.py --stalls``). So:

- the start-up heap (LangGraph, pydantic schemas, policies) is frozen: no pass ever walks it;
- the young generations keep CPython's thresholds: a pass over them is short, and longer ones
  (5,000 allocations between passes) were the longest stalls left (``bench/load.py --stalls``);
- full passes are never automatic: ``IdleCollector`` runs one when no request is in flight and
  young passes have promoted objects since the last one, and, on a server that is never idle, at
  least every ``longest_s`` seconds all the same (reference cycles must still be freed);
- what a full pass leaves (cache entries, connection pools) is frozen in turn, so the next pass,
  and a request that arrives while it runs, pays only for what is new. Frozen objects are still
  freed by reference count; a cycle among them is found by the pass that unfreezes everything first,
  every ``unfreeze_every_s`` seconds (the request path makes none: tests/test_gc_pauses.py);
- young passes too are moved out of a request that runs alone (``YoungPasses``): while it is the
  only one in flight the first generation's threshold is ``SOLO_YOUNG`` times CPython's, and once
  none is, the young pass that is due runs before the next request comes. One body at a time
  through ``structural``, 1,481 real airline bodies: 534 generation-0 and 60 generation-1 passes
  had run inside requests (0.2-0.4 ms and 0.5-1.1 ms each). With two or more in flight the
  thresholds are CPython's: there is no idle moment to move a pass to, and short passes are
  what keeps the stalls short under load.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

from middleware.pipeline.read_ahead import YOUNG_PASS_WITHIN

NO_AUTO_FULL = 1 << 30  # generation-1 passes before an automatic full pass: never, in practice
log = logging.getLogger("rein.gc")


def freeze_startup() -> None:
    """Everything built so far lives as long as the server: out of every collection from now on."""
    gc.collect()
    gc.freeze()


class IdleCollector:
    """Full collections between requests. ``in_flight`` is a callable: the number of requests running."""

    def __init__(self, in_flight: Any, idle_every_s: float = 2.0, longest_s: float = 120.0, poll_s: float = 0.05,
                 unfreeze_every_s: float = 900.0):
        self.in_flight = in_flight
        self.idle_every_s = idle_every_s
        self.longest_s = longest_s
        self.poll_s = poll_s
        self.unfreeze_every_s = unfreeze_every_s
        self.last = self.unfrozen = time.monotonic()
        self.runs: list[tuple[float, bool]] = []  # (ms, forced) of the last collections, for tests and logs
        self._task: asyncio.Task | None = None

    def install(self) -> None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, NO_AUTO_FULL)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def due(self, now: float) -> str | None:
        """"idle", "forced" or None: whether a full pass should run now."""
        if gc.get_count()[2] == 0:  # no young pass promoted anything since the last full one
            return None
        if now - self.last >= self.longest_s:
            return "forced"
        if now - self.last >= self.idle_every_s and self.in_flight() == 0:
            return "idle"
        return None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            now = time.monotonic()
            why = self.due(now)
            if why is None:
                continue
            t0 = time.perf_counter()
            if now - self.unfrozen >= self.unfreeze_every_s:
                gc.unfreeze()
                self.unfrozen = now
            gc.collect(2)
            gc.freeze()
            ms = (time.perf_counter() - t0) * 1000
            self.last = time.monotonic()
            self.runs = [*self.runs[-99:], (ms, why == "forced")]
            if why == "forced":
                log.info("rein: full collection with requests in flight after %.0f s without an idle moment "
                         "(%.1f ms)", self.longest_s, ms)


SOLO_YOUNG = 10      # a request alone in flight: generation-0 threshold, times CPython's


class YoungPasses:
    """Pure ASGI: young collections between requests when one runs at a time (module docstring)."""

    def __init__(self, app: Any, young: int | None = None):
        self.app = app
        self.young = young or gc.get_threshold()[0]  # CPython's threshold, as the server runs with it
        self.active = 0

    def _young_threshold(self, value: int) -> None:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(value, middle, old)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.active += 1
        if self.active <= 2:  # alone: few passes, run between requests; joined: short passes again
            self._young_threshold(self.young * SOLO_YOUNG if self.active == 1 else self.young)
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
            if self.active == 1:
                self._young_threshold(self.young * SOLO_YOUNG)
            elif self.active == 0:  # after the answer went out: before the next request comes in
                asyncio.get_running_loop().call_soon(self.idle_pass)

    def idle_pass(self) -> None:
        """The young pass the next request would otherwise pay, when still no request is in flight."""
        if self.active or not gc.isenabled():
            return
        young, middle, _ = gc.get_threshold()
        count = gc.get_count()
        # A generation-0 pass adds one to the generation-1 count: once that would bring it within
        # YOUNG_PASS_WITHIN of its threshold, the generation-1 pass is the one to run now (the read
        # ahead runs one when it is that close: middleware/pipeline/read_ahead.py, inside a request).
        if count[1] + 1 >= middle - YOUNG_PASS_WITHIN:
            gc.collect(1)
        elif count[0] > self.young // 10:  # (a few objects left since the last pass are not worth one)
            gc.collect(0)


def install(app: Any, in_flight: Any) -> IdleCollector:
    """Freeze the start-up heap, tune the thresholds, run full passes when ``in_flight()`` is 0 and
    young passes between requests that run one at a time."""
    freeze_startup()
    collector = IdleCollector(in_flight)
    collector.install()
    app.add_middleware(YoungPasses)
    app.state.gc = collector
    app.router.add_event_handler("startup", collector.start)
    app.router.add_event_handler("shutdown", collector.stop)
    return collector
