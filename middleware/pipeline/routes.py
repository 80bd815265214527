"""The routers: pure functions of the pipeline's settings and the turn's state, naming the next stage.

The clean path (``clean_path.py``) and the graph (``graph.py``) ask the same routers, so both walk
the same stages in the same order.
"""
from __future__ import annotations

from typing import Any

from langgraph.graph import END

from middleware.state import TurnState
from policies.messages import ToolMessage

MAX_ROUNDS = 4  # rein-owned tool calls resolved per turn before rein stops looping
ENTRIES = ("diagnose", "incept", "resolve", "recheck", "refine")  # where a turn can enter the graph
AFTER_DIAGNOSE = ("incept", "agent")
AFTER_CHECK = ("recheck", "resolve", "plan_refine", "respond")
AFTER_RESOLVE = ("agent", "respond")
AFTER_PLAN = ("refine", "respond")
FIXED = {"incept": "agent", "agent": "check_actions", "recheck": "agent", "refine": "respond", "respond": END}


def entry(p: Any, state: TurnState) -> str:
    """Where the graph starts: diagnose, or the stage the clean path handed the turn to (``resume``)."""
    return state.get("resume") or "diagnose"


def after_diagnose(p: Any, state: TurnState) -> str:
    return "incept" if state["diagnosis"].plan or state["diagnosis"].recovery_tools else "agent"


def after_check(p: Any, state: TurnState) -> str:
    """After a draft and its check: recheck a held or malformed call, resolve a rein-owned one,
    plan the refiners for a text draft, else respond (a tool-call draft is never refined)."""
    if state.get("draft_check") is not None:  # a malformed or held call, or a reply an action check held
        return "recheck"
    calls = state["draft"].message.tool_calls
    if calls:
        owned = p.inception.owned_tools(state["request"].tools)
        if owned and any(c.function.name in owned for c in calls) and state.get("rounds", 0) < MAX_ROUNDS:
            return "resolve"
        return "respond"
    # A draft that already streamed out cannot be refined any more (under shadow: refined to record
    # what would have changed, the client's stream untouched).
    refinable = not state.get("streamed") or p.modes.shadow
    return "plan_refine" if p.policy.refiners.enabled and refinable else "respond"


def after_resolve(p: Any, state: TurnState) -> str:
    # A tool result means the agent goes on; an ended turn left the assistant call last.
    return "agent" if isinstance(state["messages"][-1], ToolMessage) else "respond"


def after_plan(p: Any, state: TurnState) -> str:
    plan = state.get("plan")
    return "refine" if plan is not None and plan.refiners else "respond"
