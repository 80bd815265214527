"""Run rein's async code from sync callers: one background event loop, shared.

Why one loop and not ``asyncio.run`` per call: models keep connection pools bound to
the loop that opened them, so every sync call must land on the same loop.

Example::

    reply = run_sync(model.complete(request))
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, TypeVar

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            _loop = asyncio.new_event_loop()
            threading.Thread(target=_loop.run_forever, name="rein-sync", daemon=True).start()
        return _loop


def run_sync(work: Awaitable[T]) -> T:
    """Wait for ``work`` on rein's background loop (safe inside a running loop's thread too)."""
    loop = _background_loop()
    if _running_loop() is loop:
        raise RuntimeError("run_sync called from rein's own loop: await the coroutine instead")

    async def _wrap() -> Any:
        return await work

    return asyncio.run_coroutine_threadsafe(_wrap(), loop).result()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
