"""Keep rein's own pipeline apart from the LangGraph run that wraps or surrounds it.

The pipeline is itself a LangGraph graph. Invoked inside a LangGraph node it would become a
subgraph of the caller's run: it would inherit the caller's checkpointer and stream its
updates into the caller's stream. So the pipeline runs with LangChain's run config cleared,
and the wrapped agent (function, graph, or model handler) runs back in the caller's own
context, so its callbacks, streaming and tracing behave as if rein were not there.
OpenTelemetry's context is kept: rein's spans stay children of the caller's span.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
from typing import Any, Awaitable, Callable, TypeVar

from langchain_core.runnables.config import var_child_runnable_config

T = TypeVar("T")


async def outside_caller_run(work: Callable[[], Awaitable[T]]) -> T:
    """Await ``work()`` with no LangChain run config in scope."""
    ctx = contextvars.copy_context()
    ctx.run(var_child_runnable_config.set, None)
    return await asyncio.get_running_loop().create_task(work(), context=ctx)


async def run_turn(pipeline: Any, request: Any) -> Any:
    """One pipeline run (a ``TurnState``), kept out of any LangGraph run the caller is inside."""
    return await outside_caller_run(lambda: pipeline.run(request))


class CallerContext:
    """The caller's context, captured on entry, for running the wrapped agent in it."""

    def __init__(self) -> None:
        self.ctx = contextvars.copy_context()

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` (sync: in a worker thread; async: as a task) in the caller's context."""
        ctx = self.ctx.copy()  # a context can be entered once at a time: each call gets a copy
        if asyncio.iscoroutinefunction(fn) or asyncio.iscoroutinefunction(getattr(fn, "__call__", None)):
            return await asyncio.get_running_loop().create_task(fn(*args, **kwargs), context=ctx)
        result = await asyncio.to_thread(ctx.run, functools.partial(fn, *args, **kwargs))
        if asyncio.iscoroutine(result):  # a plain function that returned a coroutine
            return await asyncio.get_running_loop().create_task(result, context=self.ctx.copy())
        return result
