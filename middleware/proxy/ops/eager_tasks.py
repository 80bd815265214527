"""Tasks that start at once, for ``rein serve`` on Python 3.12 and later (issue 24).

A turn where a stage has work runs through the LangGraph graph, and LangGraph runs every node in
an asyncio task of its own: a task waits one event-loop iteration to start and another to hand its
result back, about 10 iterations a node on Python 3.11. Under load each iteration waits behind every
other request's work, so those turns made the whole tail (``bench/load.py --bodies dev --replay``:
own p99 1.7-3.6 s against 9.5 ms for the same stages called directly).

With ``asyncio.eager_task_factory`` (3.12+) a new task runs at once, until it first waits: a node
that finishes without waiting costs no iteration (a 5-node graph, ``ainvoke``: 30 iterations -> 0).
Python 3.11 has no eager tasks; nothing changes there. ``REIN_EAGER_TASKS=0`` turns it off.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any


def available() -> bool:
    return hasattr(asyncio, "eager_task_factory") and os.environ.get("REIN_EAGER_TASKS", "1") != "0"


def use(loop: asyncio.AbstractEventLoop) -> bool:
    """Make ``loop``'s new tasks eager where Python can; whether it did."""
    if not available() or loop.get_task_factory() is not None:  # another factory was set on purpose
        return False
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    return True


def install(app: Any) -> None:
    """Eager tasks on the server's loop from start-up (the loop exists only then)."""
    if available():
        app.router.add_event_handler("startup", lambda: use(asyncio.get_running_loop()))
