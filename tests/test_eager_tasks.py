"""rein serve's eager tasks (middleware/proxy/ops/eager_tasks.py): on Python 3.12+ a graph's node
tasks start at once, so a turn through LangGraph stops yielding to the loop per node; on 3.11
nothing changes."""
from __future__ import annotations

import asyncio
import sys

import pytest

from middleware.proxy.ops import eager_tasks

EAGER = sys.version_info >= (3, 12)


def test_nothing_changes_where_python_has_no_eager_tasks_or_it_is_turned_off(monkeypatch):
    loop = asyncio.new_event_loop()
    try:
        monkeypatch.setenv("REIN_EAGER_TASKS", "0")
        assert not eager_tasks.use(loop) and loop.get_task_factory() is None
        monkeypatch.delenv("REIN_EAGER_TASKS")
        assert eager_tasks.use(loop) is EAGER
        assert (loop.get_task_factory() is not None) is EAGER
    finally:
        loop.close()


def test_a_task_factory_set_on_purpose_is_kept():
    loop = asyncio.new_event_loop()
    try:
        def mine(loop, coro, **kw):
            return asyncio.Task(coro, loop=loop, **kw)

        loop.set_task_factory(mine)
        assert not eager_tasks.use(loop) and loop.get_task_factory() is mine
    finally:
        loop.close()


def _loop_passes_of_a_graph_run(eager: bool) -> int:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class S(TypedDict, total=False):
        n: int

    async def step(s):
        return {"n": s.get("n", 0) + 1}

    g = StateGraph(S)
    names = ["a", "b", "c"]
    for name in names:
        g.add_node(name, step)
    for x, y in zip([START, *names], [*names, END]):
        g.add_edge(x, y)
    graph = g.compile()

    async def run() -> int:
        loop = asyncio.get_running_loop()
        if eager:
            assert eager_tasks.use(loop)
        task = asyncio.ensure_future(graph.ainvoke({}))  # started eagerly: may be done already
        passes = 0
        while not task.done():
            passes += 1
            await asyncio.sleep(0)
        assert task.result() == {"n": 3}
        return passes

    return asyncio.run(run())


@pytest.mark.skipif(not EAGER, reason="eager tasks need Python 3.12 (this is %d.%d)" % sys.version_info[:2])
def test_a_graph_run_on_an_eager_loop_does_not_wait_on_the_loop_per_node():
    assert _loop_passes_of_a_graph_run(eager=False) >= 6  # LangGraph: a task per node, each a pass or more
    assert _loop_passes_of_a_graph_run(eager=True) == 0
