"""The pipeline's state: what came in, what each stage decided, what goes out.

A stage returns only what it changed. ``notes`` is the one key that accumulates: a stage returns
its new notes and the state appends them (LangGraph's reducer in the graph, ``merge`` on the clean path).
"""
from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from inception.base import Incident, Detection, Diagnosis
from policies.budget import TurnBudget
from policies.messages import Message
from policies.chat_model import ModelRequest, ModelResponse
from refiners.base import RefinePlan, Refinement, TurnContext


class TurnState(TypedDict, total=False):
    request: ModelRequest          # as the client sent it
    stream: bool
    messages: list[Message]        # what the agent sees (after inception)
    tools: list[dict[str, Any]] | None
    profile: dict[str, Any] | None
    context: TurnContext           # what the refiners see (middleware.pipeline.stream.turn_context)
    diagnosis: Diagnosis
    stream_mode: str               # pass | sentences (checked as it streams) | whole (held for the refiners)
    sentence_check: Any            # refiners.stream_check.SentenceCheck of a stream checked by sentence
    draft: ModelResponse
    streamed: bool                 # the draft already went out chunk by chunk
    held_chunks: list[dict[str, Any]]  # the upstream's chunks of a reply held whole
    held_at: float                 # when holding began (perf_counter)
    stream_report: Any             # middleware.sentence_release.StreamReport: what rein did to the stream
    plan: RefinePlan
    refinement: Refinement
    final: ModelResponse
    upstream_ms: float             # time spent waiting for the agent (not rein's overhead)
    rounds: int                    # agent calls this turn (rein-owned tool loops add rounds)
    draft_check: Diagnosis | None  # what is wrong with the draft's tool calls (None: nothing)
    rechecked: bool                # the agent was re-asked once about a malformed tool call
    hold_rounds: int               # re-asks because an action check held a call (middleware.action_hold)
    held_calls: list[Detection]    # every finding that held a call this turn (hold=True)
    dropped_calls: list[Detection] # the final draft's held calls, dropped after the policy's rounds
    flagged_calls: list[Detection] # action findings reported only (flag mode: hold=False)
    call_chunks: list[dict[str, Any]]  # a stream's tool-call chunks, held until the calls are checked
    incidents: list[Incident]      # failures the agent reported (report_internal_error): told to the operators
    notes: Annotated[list[str], operator.add]  # fail-open events, "stage: reason": each stage adds its own
    resume: str | None             # the stage the clean path hands the turn to (middleware.pipeline.clean_path)
    budget: TurnBudget             # rein's own calls this turn, every stage's (policies.budget)
    hits: list[Any]                # middleware.rule_modes.Hit: each rule that fired, in its mode
    started: float                 # when the turn began (perf_counter): rein's time for the decision log


def merge(state: dict[str, Any], update: dict[str, Any]) -> None:
    """Apply a stage's partial state as the graph's channels do: ``notes`` appended, the rest replaced."""
    for key, value in update.items():
        if key == "notes":
            state["notes"] = [*(state.get("notes") or []), *value]
        else:
            state[key] = value


def rein_model_calls(state: TurnState) -> int:
    """rein's own model calls this turn: the turn budget's count (a state without one, e.g. built by
    hand: the stages' own counts; a Refinement's already includes its plan's)."""
    budget = state.get("budget")
    if budget is not None:
        return budget.calls_used
    diagnosis, refinement, plan = state.get("diagnosis"), state.get("refinement"), state.get("plan")
    refining = refinement.model_calls if refinement is not None else plan.model_calls if plan is not None else 0
    return (diagnosis.model_calls if diagnosis is not None else 0) + refining
