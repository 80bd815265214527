"""Opt-in: what held the event loop (``REIN_LOOP_PROBE=FILE``), read by ``bench/load.py --stalls``.

Off unless the variable is set; then, in the serving process:

- a ticker task wakes every ``TICK_S``; how late it wakes is how long the loop was held;
- a watcher thread, when the ticker is late by ``STALL_MS``, samples the loop thread's stack
  every millisecond until the ticker runs again (it gets the GIL only between bytecodes or when a
  C call releases it, so a sample names the Python frame that was running, not the C call inside);
- ``gc.callbacks``: every collection's generation, duration and objects collected;
- an ASGI wrapper: each request's start and end, path, body bytes and ``x-rein-overhead-ms``.

The records go to FILE as JSON lines (one ``kind`` each: ``lag``, ``sample``, ``gc``, ``request``),
written by the watcher every half second, times in ``time.perf_counter()`` seconds of this process.
The probe costs a wake-up every ``TICK_S`` and a sample per millisecond of stall: bench figures
taken with it are for finding stalls, not for quoting.
"""
from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import time
from typing import Any

import orjson

TICK_S = 0.002
STALL_MS = 5.0
ENV = "REIN_LOOP_PROBE"


async def loop_passes(work: Any) -> tuple[Any, int]:
    """``work`` awaited, and how many loop passes went by while it was pending (a ``call_soon``
    ticker): the passes a turn waits behind other requests under load (tests, bench/load_graph.py)."""
    loop = asyncio.get_running_loop()
    count, done = 0, False

    def tick() -> None:
        nonlocal count
        if not done:
            count += 1
            loop.call_soon(tick)

    loop.call_soon(tick)
    try:
        return await work, count
    finally:
        done = True


class LoopProbe:
    def __init__(self, path: str):
        self.path = path
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.last_tick = time.perf_counter()
        self.loop_thread: int | None = None
        self.started = False
        self._gc_start = 0.0

    # ---- inside the loop ---------------------------------------------------------------
    def start(self) -> None:
        self.started = True
        self.loop_thread = threading.get_ident()
        asyncio.get_running_loop().create_task(self._tick())
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._watch, name="rein-loop-probe", daemon=True).start()

    async def _tick(self) -> None:
        while True:
            before = time.perf_counter()
            self.last_tick = before
            await asyncio.sleep(TICK_S)
            now = time.perf_counter()
            self.last_tick = now
            lag_ms = (now - before - TICK_S) * 1000
            if lag_ms >= STALL_MS:
                self._add({"kind": "lag", "start": before + TICK_S, "end": now, "ms": round(lag_ms, 3)})

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            now = time.perf_counter()
            self._add({"kind": "gc", "start": self._gc_start, "end": now, "gen": info["generation"],
                       "collected": info["collected"], "ms": round((now - self._gc_start) * 1000, 3)})

    def _add(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.records.append(record)

    # ---- the watcher thread ------------------------------------------------------------
    def _watch(self) -> None:
        flushed = time.perf_counter()
        while True:
            time.sleep(0.001)
            now = time.perf_counter()
            if (now - self.last_tick - TICK_S) * 1000 >= STALL_MS:
                frame = sys._current_frames().get(self.loop_thread)
                if frame is not None:
                    self._add({"kind": "sample", "t": now, "stack": _stack(frame)})
            if now - flushed >= 0.5:
                flushed = now
                self.flush()

    def flush(self) -> None:
        with self.lock:
            records, self.records = self.records, []
        if records:
            with open(self.path, "ab") as f:
                f.write(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _stack(frame: Any, limit: int = 40) -> list[str]:
    """Innermost first: ``path:line function``, the path from the package or site-packages on."""
    out = []
    while frame is not None and len(out) < limit:
        code = frame.f_code
        path = code.co_filename
        cut = path.rfind("site-packages/")
        path = path[cut + 14:] if cut >= 0 else path.replace(os.getcwd() + "/", "")
        out.append(f"{path}:{frame.f_lineno} {code.co_name}")
        frame = frame.f_back
    return out


class ProbeRequests:
    """Pure ASGI: records each HTTP request's window, body size and rein's reported own time."""

    def __init__(self, app: Any, probe: LoopProbe):
        self.app = app
        self.probe = probe

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if not self.probe.started:
            self.probe.start()
        start = time.perf_counter()
        size = 0
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                size = int(value or 0)
        record: dict[str, Any] = {"kind": "request", "start": start, "path": scope["path"], "bytes": size}

        async def sending(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                record["status"] = message["status"]
                for key, value in message.get("headers", ()):
                    if key == b"x-rein-overhead-ms":
                        record["own_ms"] = float(value)
                    elif key == b"x-rein-diagnosis":
                        record["diagnosis"] = value.decode("latin-1")[:80]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            record["end"] = time.perf_counter()
            self.probe._add(record)


def install(app: Any) -> None:
    """Wrap ``app`` (FastAPI) when ``REIN_LOOP_PROBE`` names a file; otherwise do nothing."""
    path = os.environ.get(ENV)
    if path:
        app.add_middleware(ProbeRequests, probe=LoopProbe(path))
