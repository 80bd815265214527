"""The policy pack schema. A pack is YAML validated by these models (``extra="forbid"``)."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Trigger = Literal["every_user_turn", "on_signal", "always"]
Strategy = Literal["think_trace", "prefill", "system_note"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    model_timeout_s: float = Field(10.0, gt=0, description="Timeout of each rein-owned model call.")
    max_calls_per_turn: int = Field(3, ge=0, description="Most rein-owned model calls in one turn.")
    refine_wall_s: float = Field(15.0, gt=0, description="Wall-clock limit of the refinement loop.")
    max_revision_chars: int = Field(8000, gt=0, description="Longer refiner replies are rejected.")


class RecoveryTool(_Strict):
    name: str
    description: str
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    # What rein does when the agent calls this tool and the client did not define it.
    on_call: Literal["end_turn", "continue"] = "end_turn"
    reply: str = Field("", description="Text returned to the user (end_turn) or as the tool result (continue).")


class ErrorType(_Strict):
    type: str
    subtype: str | None = None
    definition: str = ""
    examples: list[str] = Field(default_factory=list)
    hints: list[str] = Field(default_factory=list)
    plan: str = Field("", description="Recovery plan template; {evidence} is filled in.")
    recovery_tool: str | None = None


class InceptionSettings(_Strict):
    enabled: bool = True
    structural: bool = True
    llm: bool = False
    trigger: Trigger = "on_signal"
    strategy: Strategy = "think_trace"


class RefinerSettings(_Strict):
    enabled: bool = False
    refiners: list[Literal["factuality", "persona", "coherence"]] = Field(
        default_factory=lambda: ["factuality", "persona", "coherence"])
    planner: Literal["rules", "llm", "fixed"] = "rules"
    deterministic_factuality: bool = True
    llm: bool = False


class Policy(_Strict):
    name: str
    description: str = ""
    inception: InceptionSettings = Field(default_factory=InceptionSettings)
    refiners: RefinerSettings = Field(default_factory=RefinerSettings)
    budgets: Budgets = Field(default_factory=Budgets)
    taxonomy: list[ErrorType] = Field(default_factory=list)
    recovery_tools: list[RecoveryTool] = Field(default_factory=list)

    @property
    def passthrough(self) -> bool:
        """True when no stage can run: the proxy then relays bytes without the pipeline."""
        return not self.inception.enabled and not self.refiners.enabled
