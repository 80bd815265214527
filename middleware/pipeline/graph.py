"""The pipeline's LangGraph ``StateGraph``, compiled once per ``Pipeline``: its nodes are the stages
(``stages.py``); a stage with a router after it (``routes.py``) returns the router's answer with its
state (a ``Command``; the router's targets declared, so drawn as edges), nothing else.

    START ─▶ diagnose ─┬─▶ incept ─▶ agent ─▶ check_actions ─┬─▶ recheck ─▶ agent   (held or malformed call)
                       └──────────▶ agent                    ├─▶ resolve ─┬─▶ agent   (rein-owned tool call)
                                                             │            └─▶ respond
                                                             ├─▶ plan_refine ─┬─▶ refine ─▶ respond
                                                             │                └─▶ respond
                                                             └─▶ respond ─▶ END

START also enters at incept, resolve, recheck or refine: where the clean path hands a turn over (``resume``);
such a turn runs the same graph compiled with START going straight to that stage (``TurnGraph``).
On Python 3.11 a run costs 5 event-loop passes and each node 5 more (LangGraph's task per node and
its shielded end-of-run callbacks). With 3.12's eager tasks none, but a node that waits (the agent)
hands its result back one pass later (its task): 0 as rein serve runs it, nodes inline (middleware/proxy/ops/
eager_tasks.py; tests/test_latency_graph_passes.py). rein's routers and reads add none.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from langchain_core.runnables import Runnable
from langgraph.graph import START, StateGraph
from langgraph.types import Command

from middleware.pipeline import routes, stages
from middleware.state import TurnState

STAGES = {"diagnose": stages.diagnose, "incept": stages.incept, "agent": stages.agent,
          "check_actions": stages.check_actions, "recheck": stages.recheck, "resolve": stages.resolve,
          "plan_refine": stages.plan_refine, "refine": stages.refine, "respond": stages.respond}
ROUTED = {START: (routes.entry, routes.ENTRIES), "diagnose": (routes.after_diagnose, routes.AFTER_DIAGNOSE),
          "check_actions": (routes.after_check, routes.AFTER_CHECK),
          "resolve": (routes.after_resolve, routes.AFTER_RESOLVE), "plan_refine": (routes.after_plan, routes.AFTER_PLAN)}


def build(p: Any) -> "TurnGraph":
    """The graph of ``p`` (a ``Pipeline``: its parts are read when a node runs)."""
    return TurnGraph(p)


class TurnGraph:
    """The compiled graph from START, which routes to ``diagnose`` or to the state's ``resume``
    (the one drawn; ``run_graph``'s), and, compiled once when first asked, one per stage the clean
    path hands a turn over at, whose START goes straight there: a resumed turn takes no routing
    step (on Python 3.11 a step of its own costs 5 loop passes, and LangGraph copies every channel
    for a routed edge)."""

    def __init__(self, p: Any):
        self.p = p
        self.whole = compile_graph(p)
        self._at: dict[str, Any] = {}

    def at(self, state: TurnState):
        step = state.get("resume")
        if not step:
            return self.whole
        if step not in self._at:
            self._at[step] = compile_graph(self.p, step)
        return self._at[step]

    def ainvoke(self, state: TurnState, *args: Any, **kwargs: Any):
        return self.at(state).ainvoke(state, *args, **kwargs)

    def astream(self, state: TurnState, *args: Any, **kwargs: Any):
        return self.at(state).astream(state, *args, **kwargs)

    def get_graph(self, *args: Any, **kwargs: Any):
        return self.whole.get_graph(*args, **kwargs)


def compile_graph(p: Any, entry: str | None = None):
    """The stages and their routers as a compiled ``StateGraph``; from START to ``entry``, or
    (None) to where ``routes.entry`` says."""
    g = StateGraph(TurnState)
    for name, stage in STAGES.items():
        if name in ROUTED:  # its router's targets are declared, so the graph draws them as edges
            router, targets = ROUTED[name]
            g.add_node(name, partial(routed, stage, on_loop(router, targets, p), p), destinations=targets)
        else:
            g.add_node(name, partial(stage, p))  # LangGraph awaits the stage itself: no wrapper frame
    if entry is None:
        router, targets = ROUTED[START]
        g.add_conditional_edges(START, on_loop(router, targets, p), list(targets))
    else:
        g.add_edge(START, entry)
    for source, target in routes.FIXED.items():
        g.add_edge(source, target)
    return g.compile()


async def routed(stage: Callable, route: "Route", p: Any, state: TurnState) -> Command:
    """A stage, then its router on the state the stage leaves, as the node's ``Command``. (As a
    conditional edge, the router would run as a step of its own, after LangGraph copied every
    channel to apply the node's writes: ~1,500 calls an edge.)"""
    out = await stage(p, state)
    after = {**state, **out}
    if out.get("notes"):  # the one reduced key (middleware.state.merge)
        after["notes"] = [*(state.get("notes") or []), *out["notes"]]
    return Command(update=out, goto=route.invoke(after))


def on_loop(router: Callable, targets: tuple[str, ...], p: Any = None) -> "Route":
    """A router as LangGraph's branch runs it, on the loop (see ``Route``). A router answers only
    with a node its edges name (checked: asserts are on in the tests)."""
    return Route(router, targets, p)


class Route(Runnable):
    """A router as a plain Runnable, which a branch calls as it is. Given a function instead,
    LangGraph runs a sync one in a thread pool (a thread hop and a GIL hand-off, ~1 ms on a busy
    machine, per edge) and wraps an async one in a traced call: callbacks and two tasks, about five
    event-loop passes per edge on Python 3.11 (bench/load_graph.py). Routers are pure and instant."""

    def __init__(self, router: Callable, targets: tuple[str, ...], p: Any = None):
        self.router, self.targets, self.p = router, targets, p
        self.name = router.__name__  # the branch's name in the graph

    def invoke(self, state: TurnState, config: Any = None, **kwargs: Any) -> str:
        step = self.router(self.p, state)
        assert step in self.targets, f"{self.name} routed to {step!r}, not one of {self.targets}"
        return step

    async def ainvoke(self, state: TurnState, config: Any = None, **kwargs: Any) -> str:
        return self.invoke(state)

    async def __call__(self, state: TurnState) -> str:
        return self.invoke(state)
