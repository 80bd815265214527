"""The pipeline's state: what came in, what each stage decided, what goes out."""
from __future__ import annotations

from typing import Any, TypedDict

from inception.base import Incident, Detection, Diagnosis
from policies.budget import TurnBudget
from policies.messages import Message
from policies.chat_model import ModelRequest, ModelResponse
from refiners.base import RefinePlan, Refinement


class TurnState(TypedDict, total=False):
    request: ModelRequest          # as the client sent it
    stream: bool
    messages: list[Message]        # what the agent sees (after inception)
    tools: list[dict[str, Any]] | None
    profile: dict[str, Any] | None
    diagnosis: Diagnosis
    may_refine: bool               # decided before the draft: False lets a stream pass through
    stream_mode: str               # pass | sentences (checked as it streams) | whole (held for the refiners)
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
    notes: list[str]               # fail-open events: "stage: reason"
    resume: str | None             # the stage the clean path handed the turn to (Pipeline.run)
    budget: TurnBudget             # rein's own calls this turn, every stage's (policies.budget)
    hits: list[Any]                # middleware.rule_modes.Hit: each rule that fired, in its mode
    started: float                 # when the turn began (perf_counter): rein's time for the decision log


def rein_model_calls(state: TurnState) -> int:
    """rein's own model calls this turn: the turn budget's count (a state without one, e.g. built by
    hand: the stages' own counts; a Refinement's already includes its plan's)."""
    budget = state.get("budget")
    if budget is not None:
        return budget.calls_used
    diagnosis, refinement, plan = state.get("diagnosis"), state.get("refinement"), state.get("plan")
    refining = refinement.model_calls if refinement is not None else plan.model_calls if plan is not None else 0
    return (diagnosis.model_calls if diagnosis is not None else 0) + refining
