"""Tasks that start at once, for ``rein serve`` on Python 3.12 and later (issue 24).

A turn where a stage has work runs through the LangGraph graph, and LangGraph runs every node in
an asyncio task of its own: a task waits one event-loop iteration to start and another to hand its
result back, about 10 iterations a node on Python 3.11. Under load each iteration waits behind every
other request's work, so those turns made the whole tail (``bench/load.py --bodies dev --replay``:
own p99 1.7-3.6 s against 9.5 ms for the same stages called directly).

With ``asyncio.eager_task_factory`` (3.12+) a new task runs at once, until it first waits: a node
that finishes without waiting costs no iteration (a 5-node graph, ``ainvoke``: 30 iterations -> 0).
Python 3.11 has no eager tasks; nothing changes there. ``REIN_EAGER_TASKS=0`` turns it off.

A node that waits (the agent, for its upstream) still costs one pass: LangGraph's ``RunnableSeq``
awaits each node in a task of its own (to make the node's config its context), so the node's result
reaches the graph one pass after the answer: at c=50 ~30-40 ms of own time for every turn with work
(``bench/load.py --split``). ``rein serve`` (only it; ``REIN_INLINE_NODES=0`` turns it off) has
LangGraph await its nodes inline, the path LangGraph itself takes on Python 3.10: the Pregel loop,
channels, steps and callbacks stay LangGraph's; the node's config is not its context, which rein's
stages never read (no ``get_config``, ``interrupt``; the stream writer is the walk's). Never in the
SDK: a user's graph in the same process reads that context (LangChain's "messages" stream mode).
Set at start-up, reset at shutdown.
"""
from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


def available() -> bool:
    return hasattr(asyncio, "eager_task_factory") and os.environ.get("REIN_EAGER_TASKS", "1") != "0"


def use(loop: asyncio.AbstractEventLoop) -> bool:
    """Make ``loop``'s new tasks eager where Python can; whether it did."""
    if not available() or loop.get_task_factory() is not None:  # another factory was set on purpose
        return False
    loop.set_task_factory(asyncio.eager_task_factory)  # type: ignore[attr-defined]
    return True


def inline_nodes(on: bool) -> None:
    """LangGraph awaits each node inline (``on``) or, as it does by default, in a task of its own.
    A LangGraph without this switch fails tests/test_latency_graph_passes.py rather than going on silently."""
    from langgraph._internal import _runnable

    _runnable.ASYNCIO_ACCEPTS_CONTEXT = not on and sys.version_info >= (3, 11)


def install(app: Any) -> None:
    """Eager tasks on the server's loop from start-up (the loop exists only then)."""
    if available():
        app.router.add_event_handler("startup", lambda: use(asyncio.get_running_loop()))
    if os.environ.get("REIN_INLINE_NODES", "1") != "0":  # c=50 own p99 35 -> 3 ms (bench/load.py --split)
        app.router.add_event_handler("startup", lambda: inline_nodes(True))
        app.router.add_event_handler("shutdown", lambda: inline_nodes(False))
