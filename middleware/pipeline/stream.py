"""A streamed turn: the stream mode decided before the draft, the one sentence checker kept in
state, the agent's stream relayed to the client, and the walk that yields the turn's events.

``pass`` when no refiner applies, ``sentences`` when only rules may change the reply (each sentence
goes out once checked; the refinement is done when the stream is), ``whole`` when a refiner may
ask rein's model (held, then re-emitted in the upstream's own chunks by ``respond``).
"""
from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from langgraph.config import get_stream_writer

from middleware import tracing
from middleware.agent_stream import PASS, SENTENCES, WHOLE, relay_agent_stream
from middleware.state import TurnState
from policies.chat_model import ModelRequest
from policies.messages import text_of
from refiners.base import TurnContext
from refiners.turn_facts import TurnFacts

__all__ = ["PASS", "SENTENCES", "WHOLE", "decide", "relay", "set_writer", "turn_context", "writer"]


def decide(p: Any, state: TurnState, notes: list[str]) -> dict[str, Any]:
    """The stream mode, and for ``sentences`` the checker (kept: the agent stage uses this one)."""
    mode, check, ctx = PASS, None, None
    if p.policy.refiners.enabled:
        ctx = turn_context(state)
        try:
            if p.refinery.may_refine(ctx):
                check = p.refinery.sentence_check(ctx)  # declared by refiners.base.Refinery
                mode = SENTENCES if check is not None else WHOLE
        except Exception as e:  # fail open: a stream nobody can check goes out as the agent writes it
            mode, check = PASS, None
            notes.append(f"stream_check: internal error ({type(e).__name__}); the reply streams unchecked")
            tracing.event("rein.stream_check.skipped", {"reason": notes[-1]})
    if mode != PASS and p.modes.softens("refine"):
        # Shadow holds no stream (the refiners run once it has gone out, to record what they would
        # have changed); a refiner rule that may not act cannot be undone sentence by sentence.
        mode = PASS if p.modes.shadow else WHOLE
    out: dict[str, Any] = {"stream_mode": mode, "sentence_check": check if mode == SENTENCES else None}
    if ctx is not None:
        out["context"] = ctx
    return out


async def relay(p: Any, state: TurnState, request: ModelRequest) -> dict[str, Any]:
    """The agent's stream to the client by the turn's mode; the draft and what was held."""
    mode = state.get("stream_mode", PASS)
    check = None
    if mode == SENTENCES:  # the checker decided on, while the dialogue is the one it was made for
        ctx = turn_context(state)
        check = state.get("sentence_check") if ctx is state.get("context") else p.refinery.sentence_check(ctx)
    relayed = await relay_agent_stream(
        p.agent, request, writer(), p.inception.owned_tools(state["request"].tools),
        mode=SENTENCES if check is not None else WHOLE if mode != PASS else PASS, check=check,
        hold_calls=p.inception.checks_calls(state["request"].tools) and not p.modes.shadow)
    out: dict[str, Any] = {"draft": relayed.draft, "streamed": relayed.streamed, "held_chunks": relayed.held,
                           "held_at": relayed.held_at, "stream_report": relayed.report, "call_chunks": relayed.calls}
    if relayed.check is not None and relayed.streamed:
        # Checked as it streamed: the refinement is done, and is what the client got.
        out["refinement"] = relayed.check.refinement(text_of(relayed.draft.message))
    if relayed.check is not None and relayed.check.skipped_notes():  # a refiner raised, or the size limit
        out["notes"] = list(relayed.check.skipped_notes())
        tracing.event("rein.stream_check.skipped", {"reason": "; ".join(relayed.check.skipped_notes())})
    return out


# Where a stage's chunks go: the walk's queue (Pipeline.events), on the clean path and in the graph;
# unset (the graph run by other hands with stream_mode="custom"), LangGraph's writer.
_WRITER: ContextVar[Any] = ContextVar("rein_stream_writer", default=None)


def writer() -> Any:
    return _WRITER.get() or get_stream_writer()


def set_writer(write: Any) -> None:
    """Chunks written in the current task (and tasks it starts) go to ``write`` (None: LangGraph's)."""
    _WRITER.set(write)


def turn_context(state: TurnState) -> TurnContext:
    """What the refiners see this turn: one object, kept in state (``context``) while the dialogue
    the agent sees is the same list (a plan planted or a tool resolved makes a new one)."""
    kept = state.get("context")
    if kept is not None and kept.messages is state["messages"]:
        return kept
    request = state["request"]
    budget = state["budget"]
    # One TurnFacts per turn: the refiners' evidence and profile, built once and rebuilt only for
    # what a new dialogue changes (refiners/turn_facts.py).
    facts = kept.facts if kept is not None else TurnFacts()
    # Built from state already validated: constructed, not re-validated.
    return TurnContext.model_construct(messages=state["messages"], tools=request.tools, profile=state.get("profile"),
                                       user=request.extra.get("user"),
                                       model_calls_used=budget.calls_used, budget=budget, facts=facts,
                                       documents=[])  # every field given: pydantic inspects a default
                                                      # factory's signature on each construct
