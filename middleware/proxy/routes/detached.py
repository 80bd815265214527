"""Run a response's event source in its own task, so a client that hangs up cancels it cleanly.

When a client disconnects mid-stream, Starlette cancels the response inside an anyio cancel
scope, which cancels every later ``await`` as well, including the clean-up of a LangGraph run
(its ``astream`` must await its node tasks to cancel them). The node task then outlives the
request, holding the upstream connection open until the upstream timeout. Iterated from a task
of its own, the source is cancelled exactly once and its clean-up runs to the end.

Example::

    events = Detached(pipeline.events(request))
    async for kind, payload in events: ...
    await events.aclose()     # cancels the source's task; never blocks
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

_END = object()


class Detached:
    def __init__(self, source: AsyncIterator[Any]):
        # A little slack lets the run go ahead while the client is written to (bounded: backpressure).
        self._queue: asyncio.Queue[tuple[Any, BaseException | None]] = asyncio.Queue(maxsize=64)
        self._task = asyncio.get_running_loop().create_task(self._pump(source))

    async def _pump(self, source: AsyncIterator[Any]) -> None:
        try:
            async for item in source:
                await self._queue.put((item, None))
            await self._queue.put((_END, None))
        except asyncio.CancelledError:
            raise
        except Exception as e:  # handed to the reader, raised where it would have been
            await self._queue.put((_END, e))
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def __aiter__(self) -> "Detached":
        return self

    async def __anext__(self) -> Any:
        item, error = await self._queue.get()
        if error is not None:
            raise error
        if item is _END:
            raise StopAsyncIteration
        return item

    def ready(self) -> list[Any]:
        """Items already waiting, without blocking (the end and errors stay for ``__anext__``)."""
        out = []
        while not self._queue.empty():
            item, error = self._queue._queue[0]  # peek: only plain items are taken here
            if error is not None or item is _END:
                break
            out.append(self._queue.get_nowait()[0])
        return out

    async def aclose(self) -> None:
        self._task.cancel()
