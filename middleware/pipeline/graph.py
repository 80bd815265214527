"""The pipeline's LangGraph ``StateGraph``, compiled once per ``Pipeline``: its nodes are the stages
(``stages.py``), its conditional edges the routers (``routes.py``), nothing else.

    START ─▶ diagnose ─┬─▶ incept ─▶ agent ─▶ check_actions ─┬─▶ recheck ─▶ agent   (held or malformed call)
                       └──────────▶ agent                    ├─▶ resolve ─┬─▶ agent   (rein-owned tool call)
                                                             │            └─▶ respond
                                                             ├─▶ plan_refine ─┬─▶ refine ─▶ respond
                                                             │                └─▶ respond
                                                             └─▶ respond ─▶ END

START also enters at incept, resolve, recheck or refine: where the clean path hands a turn over (``resume``).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

from langgraph.graph import START, StateGraph

from middleware.pipeline import routes, stages
from middleware.state import TurnState

STAGES = {"diagnose": stages.diagnose, "incept": stages.incept, "agent": stages.agent,
          "check_actions": stages.check_actions, "recheck": stages.recheck, "resolve": stages.resolve,
          "plan_refine": stages.plan_refine, "refine": stages.refine, "respond": stages.respond}
ROUTED = {START: (routes.entry, routes.ENTRIES), "diagnose": (routes.after_diagnose, routes.AFTER_DIAGNOSE),
          "check_actions": (routes.after_check, routes.AFTER_CHECK),
          "resolve": (routes.after_resolve, routes.AFTER_RESOLVE), "plan_refine": (routes.after_plan, routes.AFTER_PLAN)}


def build(p: Any):
    """The compiled graph of ``p`` (a ``Pipeline``: its parts are read when a node runs)."""
    g = StateGraph(TurnState)
    for name, stage in STAGES.items():
        g.add_node(name, partial(stage, p))  # LangGraph awaits the stage itself: no wrapper frame
    for source, (router, targets) in ROUTED.items():
        g.add_conditional_edges(source, on_loop(router, targets, p), list(targets))
    for source, target in routes.FIXED.items():
        g.add_edge(source, target)
    return g.compile()


def on_loop(router: Callable, targets: tuple[str, ...], p: Any = None):
    """Under ainvoke LangGraph runs a sync router in a thread pool: a thread hop (and a GIL
    hand-off, ~1 ms on a busy machine) per edge. Routers are pure and instant: keep them on the loop.
    A router answers only with a node its edges name (checked: asserts are on in the tests)."""
    async def route(state: TurnState) -> str:
        step = router(p, state)
        assert step in targets, f"{router.__name__} routed to {step!r}, not one of {targets}"
        return step

    route.__name__ = router.__name__
    return route
