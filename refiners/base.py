"""What the pipeline needs from refinement: a pre-draft gate, a plan, and the refine loop."""
from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from policies.messages import Message


class RefinePlan(BaseModel):
    refiners: list[str] = Field(default_factory=list)  # in the order they run
    reason: str = ""
    model_calls: int = 0


class RefinerStep(BaseModel):
    name: str
    changed: bool
    feedback: str = ""


class Refinement(BaseModel):
    draft: str
    final: str
    steps: list[RefinerStep] = Field(default_factory=list)
    model_calls: int = 0
    notes: list[str] = Field(default_factory=list)  # fail-open events

    @property
    def changed(self) -> bool:
        return self.final != self.draft

    def header(self) -> str:
        """Value of ``x-rein-refined``: refiners that changed the reply, or ``none``."""
        names = [s.name for s in self.steps if s.changed]
        return ",".join(names) if names else "none"


class TurnContext(BaseModel):
    """What refiners can see: the dialogue, the tools, and who the user is."""
    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    user: str | None = None
    profile: dict[str, Any] | None = None


class Refinery(Protocol):
    def may_refine(self, ctx: TurnContext) -> bool:
        """Decided before the draft exists: False lets a stream pass straight through."""
        ...

    async def plan(self, ctx: TurnContext, draft: str) -> RefinePlan: ...

    async def refine(self, ctx: TurnContext, draft: str, plan: RefinePlan) -> Refinement: ...


class NoRefinery:
    def may_refine(self, ctx: TurnContext) -> bool:
        return False

    async def plan(self, ctx: TurnContext, draft: str) -> RefinePlan:
        return RefinePlan(reason="refinement disabled")

    async def refine(self, ctx: TurnContext, draft: str, plan: RefinePlan) -> Refinement:
        return Refinement(draft=draft, final=draft)
