"""The clean path: most turns have nothing for any stage to do. Then the stages are called
directly, as the graph would call them — diagnose, agent, check_actions, plan_refine, respond —
without LangGraph's step machinery; the first stage that has work (a plan to plant, a held or
malformed call to re-ask, a rein-owned call to resolve, refiners planned) hands the turn to the
graph at that stage. Both ask the same routers (``routes.py``), so they walk the same stages:
tests/test_clean_path.py holds the two to the same turns, streamed and not.
"""
from __future__ import annotations

from typing import Any, Callable

from langgraph.graph import END

from middleware.pipeline import routes, stages
from middleware.state import merge


async def clean_path(p: Any, state: dict[str, Any], diagnosed: Callable[[], None] | None = None) -> str:
    """Walk ``state`` while no stage has work; END when the turn is done, else the stage the graph
    resumes at. ``diagnosed`` is called once the diagnosis is in ``state`` (a stream's headers)."""
    merge(state, await stages.diagnose(p, state))
    if diagnosed is not None:
        diagnosed()
    step = routes.after_diagnose(p, state)
    if step != "agent":
        return step
    merge(state, await stages.agent(p, state))
    merge(state, await stages.check_actions(p, state))
    step = routes.after_check(p, state)
    if step == "plan_refine":
        merge(state, await stages.plan_refine(p, state))
        step = routes.after_plan(p, state)
    if step != "respond":
        return step
    merge(state, await stages.respond(p, state))
    return END
