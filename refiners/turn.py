"""One stage of a turn as the refiners see it: the context, its evidence and profile (the turn's
``TurnFacts``, built once per turn), and rein's model with this stage's budget. ``consult`` is the
one way a refiner asks the model."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from policies.messages import AssistantMessage, ToolMessage, UserMessage, text_of
from policies.chat_model import ChatModel
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.llm import BadReply, Budget, BudgetSpent, guard, review
from refiners.profile import Profile

_QUESTION_START = re.compile(r"^(?:who|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
                             r"will|would|should|may|have|has)\b", re.I)


@dataclass
class RefinerTurn:
    """What a refiner's ``applies``, ``check`` and ``revise`` are given. The gate, the plan, the
    refine loop and a stream's check each make one (each has its own budget); what they read of the
    dialogue comes from ``ctx.facts``, shared by all of them."""
    ctx: TurnContext
    model: ChatModel | None
    budget: Budget
    llm: bool = True          # may refiners ask the model at all
    thorough: bool = False    # fixed chain: every planned refiner asks the model
    notes: list[str] = field(default_factory=list)

    @property
    def evidence(self) -> Evidence:
        evidence = self.ctx.facts.evidence(self.ctx)
        if evidence.notes:
            self.notes += [n for n in evidence.notes if n not in self.notes]
        return evidence

    @property
    def profile(self) -> Profile | None:
        return self.ctx.facts.profile(self.ctx)

    @property
    def last_user(self) -> str:
        for m in reversed(self.ctx.messages):
            if isinstance(m, UserMessage):
                return text_of(m)
        return ""

    def questions(self) -> list[str]:
        """The sentences of the last user message that ask something."""
        parts = re.split(r"(?<=[.!?])\s+|\n", self.last_user)
        return [p.strip() for p in parts if p.strip().endswith("?") or _QUESTION_START.match(p.strip())]

    def earlier_assistant(self) -> list[str]:
        return [text_of(m) for m in self.ctx.messages if isinstance(m, AssistantMessage) and text_of(m)]

    def evidence_texts(self) -> list[str]:
        texts = [text_of(m) for m in self.ctx.messages if isinstance(m, (ToolMessage, UserMessage))]
        return texts + list(self.ctx.documents) + self.earlier_assistant()

    def dialogue(self, limit: int = 2400) -> str:
        """The recent dialogue as plain lines, newest kept when it must be cut."""
        lines = []
        for m in self.ctx.messages:
            role = getattr(m, "role", "")
            if role in ("system", "developer"):
                continue
            text = text_of(m) or ""
            if isinstance(m, AssistantMessage) and m.tool_calls:
                text += " " + "; ".join(f"[calls {c.function.name}({c.function.arguments})]" for c in m.tool_calls)
            lines.append(f"{role}: {text.strip()}")
        out = "\n".join(lines)
        return out[-limit:]

    def can_consult(self) -> bool:
        return self.llm and self.model is not None

    async def consult(self, aspect: str, instructions: str, context: str, text: str) -> tuple[str, str]:
        """Ask the model to review ``text``; (accepted revision or ``text``, feedback). Never raises:
        a spent budget, a failed call or a reply the guard rejects keeps ``text``."""
        if not self.can_consult():
            return text, ""
        try:
            verdict = await review(self.model, self.budget, aspect, instructions, context, text)
        except BudgetSpent as e:
            self.notes.append(f"{aspect}: {e}")
            return text, f"skipped the model: {e}"
        except BadReply as e:
            self.notes.append(f"{aspect}: {e}")
            return text, f"model reply unusable ({e}); kept the previous revision"
        except Exception as e:  # a provider error must not break the turn
            self.notes.append(f"{aspect}: {type(e).__name__}: {e!s:.100}")
            return text, f"model call failed ({type(e).__name__}); kept the previous revision"
        if verdict.ok or verdict.revision.strip() == text.strip():
            return text, verdict.feedback or "no change needed"
        if not verdict.revision:
            return text, f"{verdict.feedback} — empty revision; kept the previous revision"
        reason = guard(text, verdict.revision, self.evidence_texts(), self.budget.max_chars)
        if reason:
            return text, f"{verdict.feedback} — revision rejected: {reason}; kept the previous revision"
        return verdict.revision, verdict.feedback or "revised"


def is_profile_empty(profile: Profile | None) -> bool:
    return profile is None or profile.is_empty()
