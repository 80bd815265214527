"""What rein did in one turn, as the SDK hands it back, and results that carry it.

Every SDK surface returns what the wrapped agent returned, plus a ``ReinReport``:
``str`` results come back as ``ReinText`` (a ``str``), dicts as ``ReinDict`` (a ``dict``),
other objects as themselves; each has ``.rein``. Messages inside a LangChain agent's state
also carry it as a plain dict in ``response_metadata["rein"]`` (it survives checkpoints).
``report_of(result)`` reads any of them.

Example::

    reply = guarded(messages)
    reply.rein.diagnosis.header()      # "tool_error/..." or "none"
    reply.rein.refined, reply.rein.steps
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from inception.base import Detection, Diagnosis
from middleware.state import TurnState
from policies.messages import AssistantMessage
from refiners.base import RefinePlan, Refinement, RefinerStep


class ReinReport(BaseModel):
    policy: str
    diagnosis: Diagnosis = Field(default_factory=Diagnosis)
    injected: bool = False            # a recovery plan went into what the agent saw
    rechecked: bool = False           # the agent was re-asked about a malformed tool call
    held_calls: list[Detection] = Field(default_factory=list)     # findings that held a tool call (re-asked)
    dropped_calls: list[Detection] = Field(default_factory=list)  # held calls dropped after the policy's rounds
    flagged_calls: list[Detection] = Field(default_factory=list)  # action findings reported only
    draft: AssistantMessage | None = None
    final: AssistantMessage | None = None
    plan: RefinePlan | None = None
    refinement: Refinement | None = None
    rounds: int = 0                   # agent calls this turn
    notes: list[str] = Field(default_factory=list)  # fail-open events: "stage: reason"

    @property
    def refined(self) -> bool:
        return self.refinement is not None and self.refinement.changed

    @property
    def steps(self) -> list[RefinerStep]:
        return self.refinement.steps if self.refinement else []

    @property
    def held_rules(self) -> list[str]:
        """The rule ids that held a tool call this turn, once each."""
        return list(dict.fromkeys(d.rule_id for d in self.held_calls))

    @property
    def feedback(self) -> list[str]:
        return [s.feedback for s in self.steps if s.feedback]

    @classmethod
    def from_state(cls, policy: str, state: TurnState) -> "ReinReport":
        diagnosis = state.get("diagnosis") or Diagnosis()
        draft, final = state.get("draft"), state.get("final")
        return cls(policy=policy, diagnosis=diagnosis,
                   # the pipeline's incept route, or its recheck of a malformed tool call
                   injected=bool(diagnosis.plan or diagnosis.recovery_tools or state.get("rechecked")
                                 or state.get("hold_rounds")),
                   rechecked=bool(state.get("rechecked")),
                   held_calls=list(state.get("held_calls") or []),
                   dropped_calls=list(state.get("dropped_calls") or []),
                   flagged_calls=list(state.get("flagged_calls") or []),
                   draft=draft.message if draft else None, final=final.message if final else None,
                   plan=state.get("plan"), refinement=state.get("refinement"),
                   rounds=state.get("rounds", 0), notes=list(state.get("notes") or []))


class ReinText(str):
    """A ``str`` reply with ``.rein``."""
    rein: ReinReport

    def __new__(cls, text: str, report: ReinReport) -> "ReinText":
        obj = super().__new__(cls, text)
        obj.rein = report
        return obj


class ReinDict(dict):
    """A ``dict`` reply (OpenAI assistant message or graph state) with ``.rein``."""
    rein: ReinReport

    def __init__(self, data: dict[str, Any], report: ReinReport):
        super().__init__(data)
        self.rein = report


def attach(result: Any, report: ReinReport) -> Any:
    """``result`` with ``.rein`` set: str and dict become subclasses; other objects (pydantic
    messages, openai objects) get the attribute directly, outside their fields and dumps."""
    if isinstance(result, str):
        return ReinText(result, report)
    if isinstance(result, dict):
        return ReinDict(result, report)
    object.__setattr__(result, "rein", report)
    return result


def report_of(result: Any) -> ReinReport | None:
    """The ``ReinReport`` a rein-wrapped call attached to its result, if any."""
    found = getattr(result, "rein", None)
    if isinstance(found, ReinReport):
        return found
    metadata = getattr(result, "response_metadata", None)
    if isinstance(metadata, dict) and isinstance(metadata.get("rein"), dict):
        return ReinReport.model_validate(metadata["rein"])
    if isinstance(result, dict) and result.get("messages"):  # a graph state: its last message
        return report_of(result["messages"][-1])
    return None
