"""What the pipeline needs from refinement: a pre-draft gate, a plan, and the refine loop.

A refiner is one aspect of a reply (factuality, persona, coherence, or your own): see ``Refiner``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from policies.budget import TurnBudget
from policies.messages import Message
from refiners.turn_facts import TurnFacts


class RefinePlan(BaseModel):
    refiners: list[str] = Field(default_factory=list)  # in the order they run
    reason: str = ""                                   # the planner's short justification
    model_calls: int = 0
    thorough: bool = False                             # fixed chain: every refiner asks the model


class RefinerStep(BaseModel):
    name: str
    changed: bool
    feedback: str = ""
    flags: list[str] = Field(default_factory=list)     # problems reported, not fixed (factuality mode: flag)
    model_calls: int = 0
    ms: float = 0.0


class Refinement(BaseModel):
    draft: str
    final: str
    steps: list[RefinerStep] = Field(default_factory=list)
    model_calls: int = 0                               # planner + refiners
    plan_reason: str = ""
    notes: list[str] = Field(default_factory=list)     # fail-open events

    @property
    def changed(self) -> bool:
        return self.final != self.draft

    @property
    def flags(self) -> list[str]:
        return [f for s in self.steps for f in s.flags]

    def flag_header(self) -> str:
        """Value of ``x-rein-flagged``: refiners that reported a problem they left in place, or ``none``."""
        names = [s.name for s in self.steps if s.flags]
        return ",".join(dict.fromkeys(names)) if names else "none"

    def header(self) -> str:
        """Value of ``x-rein-refined``: refiners that changed the reply, or ``none``."""
        names = [s.name for s in self.steps if s.changed]
        return ",".join(names) if names else "none"


class TurnContext(BaseModel):
    """What refiners can see: the dialogue, the tools, who the user is, operator documents; and
    ``facts``, what the refiners work out once per turn. The pipeline gives every stage of a turn
    the same ``TurnFacts`` (one per turn); a context made without one has its own."""
    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    user: str | None = None
    profile: dict[str, Any] | None = None
    documents: list[str] = Field(default_factory=list)
    model_calls_used: int = 0                          # rein calls already spent this turn (diagnosis)
    # The turn's one budget (the pipeline's, which records every stage's calls); None: model_calls_used.
    budget: TurnBudget | None = None
    facts: TurnFacts = Field(default_factory=TurnFacts, exclude=True, repr=False)


class Check(BaseModel):
    """A refiner's cheap verdict on a text: what looks wrong, and whether rules could not tell."""
    findings: list[str] = Field(default_factory=list)
    undecided: bool = False
    skip_reason: str = ""                              # why the aspect does not apply at all


class Revision(BaseModel):
    text: str
    feedback: str = ""
    model_calls: int = 0
    flags: list[str] = Field(default_factory=list)     # what the refiner reports but leaves unchanged


class Refiner(Protocol):
    """One aspect of a reply. ``applies(turn)`` is asked before the draft exists (False: this
    aspect has nothing to go on this turn, e.g. no profile); ``check(turn, text)`` is the planner's
    cheap verdict (no model); ``async revise(turn, text)`` returns the revised text. ``turn`` is a
    ``refiners.turn.RefinerTurn``: ``turn.ctx`` (the dialogue), ``turn.evidence``, ``turn.profile``,
    and ``turn.consult`` to ask rein's model within the turn's budget.

    A custom one goes to ``Rein(..., refiners=[Shouting()])`` or a policy's ``plugins:``; the
    policy's ``refiners.refiners`` may place its name in the running order (else it runs last).
    Streams: set ``sentence_local = True`` when ``check``/``revise`` read a sentence only with the
    text before it, and the reply is released sentence by sentence (``revise`` is given one
    sentence at a time); or implement ``SentenceRefiner`` to check a sentence your own way.
    Otherwise a turn it applies to is held whole. A short acknowledgement ("ok, thanks") is never
    refined, by any refiner:

    >>> import asyncio
    >>> from policies.messages import UserMessage
    >>> from policies.schema import Policy
    >>> import refiners
    >>> class Shouting:
    ...     name = "shouting"
    ...     def applies(self, turn):
    ...         return True
    ...     def check(self, turn, text):
    ...         return Check(findings=["all caps"]) if text.isupper() else Check()
    ...     async def revise(self, turn, text):
    ...         return Revision(text=text.capitalize(), feedback="lowered the volume")
    >>> refinery = refiners.build(Policy(name="p", refiners={"enabled": True}), refiners=[Shouting()])
    >>> ctx = TurnContext(messages=[UserMessage(content="where is my parcel?")])
    >>> plan = asyncio.run(refinery.plan(ctx, "IT LEFT THE DEPOT THIS MORNING."))
    >>> plan.refiners
    ['shouting']
    >>> result = asyncio.run(refinery.refine(ctx, "IT LEFT THE DEPOT THIS MORNING.", plan))
    >>> result.final, result.header()
    ('It left the depot this morning.', 'shouting')
    """
    name: str

    def applies(self, turn: Any) -> bool: ...

    def check(self, turn: Any, text: str) -> Check: ...

    async def revise(self, turn: Any, text: str) -> Revision: ...


@dataclass
class SentenceRevision:
    """One refiner's verdict on one sentence of a streamed reply."""
    text: str                                          # the sentence as it goes out
    notes: list[str] = field(default_factory=list)     # what was fixed or left alone, for the feedback
    flags: list[str] = field(default_factory=list)     # problems reported, not fixed


class SentenceReview(Protocol):
    """A streamed reply's check by one refiner, one sentence at a time, in order. ``reply`` is the
    reply so far as the agent wrote it, ``reply[start:end]`` the sentence, ``text`` that sentence
    as the refiners before this one left it. Rules only: a review never asks rein's model."""

    async def sentence(self, reply: str, start: int, end: int, text: str) -> SentenceRevision: ...


@runtime_checkable
class SentenceRefiner(Refiner, Protocol):
    """A refiner that checks a streamed reply sentence by sentence. ``consults(turn)``: whether its
    ``revise`` may ask rein's model this turn (then the reply is held whole: the model reads all of
    it); ``sentence_review(turn)`` makes the turn's review (None: nothing to check by sentence this
    turn). A refiner that only declares ``sentence_local = True`` gets one that calls ``revise`` on
    each sentence (``refiners.stream_check.BySentence``); factuality brings its own, which reads the
    values in the sentence against the reply so far."""

    def consults(self, turn: Any) -> bool: ...

    def sentence_review(self, turn: Any) -> SentenceReview | None: ...


class Refinery(Protocol):
    """The refinement stage the pipeline runs. Subclass it to inherit ``sentence_check``'s default
    (hold a stream whole whenever a refiner may change it)."""

    def may_refine(self, ctx: TurnContext) -> bool:
        """Decided before the draft exists: False lets a stream pass straight through."""
        ...

    def sentence_check(self, ctx: TurnContext) -> Any:
        """A stream's per-sentence check (a ``refiners.stream_check.SentenceCheck``) when rules alone
        may change this turn's reply; None holds the reply whole (when ``may_refine``)."""
        return None

    def prepare(self, ctx: TurnContext) -> None:
        """Read what ``plan`` and ``refine`` will read of this dialogue (its evidence), before the
        draft exists: the pipeline calls it on the event loop while the agent writes the reply, off
        the turn's path (so: short, no waiting). Optional: without it ``plan`` does the reading."""
        return None

    async def plan(self, ctx: TurnContext, draft: str) -> RefinePlan: ...

    async def refine(self, ctx: TurnContext, draft: str, plan: RefinePlan) -> Refinement: ...


class NoRefinery(Refinery):
    def may_refine(self, ctx: TurnContext) -> bool:
        return False

    async def plan(self, ctx: TurnContext, draft: str) -> RefinePlan:
        return RefinePlan(reason="refinement disabled")

    async def refine(self, ctx: TurnContext, draft: str, plan: RefinePlan) -> Refinement:
        return Refinement(draft=draft, final=draft)
