"""One turn as the refiners see it: the context, its evidence and profile (computed once), and
rein's model with this turn's budget. ``consult`` is the one way a refiner asks the model."""
from __future__ import annotations

import re
from typing import Any
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property

from policies.messages import AssistantMessage, ToolMessage, UserMessage, text_of
from policies.chat_model import ChatModel
from refiners.base import TurnContext
from refiners.claims import find_claims
from refiners.evidence import Evidence
from refiners.llm import BadReply, Budget, BudgetSpent, guard, review
from refiners.profile import Profile, extract_profile, merge_profiles, parse_profile

_QUESTION_START = re.compile(r"^(?:who|what|when|where|which|why|how|is|are|was|were|do|does|did|can|could|"
                             r"will|would|should|may|have|has)\b", re.I)


@dataclass
class Turn:
    ctx: TurnContext
    model: ChatModel | None
    budget: Budget
    llm: bool = True          # may refiners ask the model at all
    thorough: bool = False    # fixed chain: every planned refiner asks the model
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._checked: dict[str, tuple[str, list[str], list[str]]] = {}

    @cached_property
    def evidence(self) -> Evidence:
        """Built once per dialogue: the gate, the planner and the refine loop each make a Turn."""
        evidence = _evidence_of(self.ctx)
        self.notes += [n for n in evidence.notes if n not in self.notes]
        return evidence

    @cached_property
    def profile(self) -> Profile | None:
        given = parse_profile(self.ctx.profile) if self.ctx.profile else None
        merged = merge_profiles(given.model_dump(exclude_defaults=True) if given else None,
                                extract_profile(self.ctx.messages))
        return parse_profile(merged, "dialogue") if merged else None

    def factuality(self, text: str) -> tuple[str, list[str], list[str]]:
        """The deterministic factuality pass on ``text``, once per text (the planner's check and the
        refiner's revision ask the same question)."""
        if text not in self._checked:
            from refiners.factuality import CHECKED, deterministic_pass

            if not any(c.kind in CHECKED for c in find_claims(text)):
                self._checked[text] = (text, [], [])  # nothing to check: the evidence need not be built
            else:
                self._checked[text] = deterministic_pass(text, self.evidence)
        return self._checked[text]

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


_EVIDENCE: OrderedDict[tuple, tuple[Any, Evidence]] = OrderedDict()


def _evidence_of(ctx: TurnContext) -> Evidence:
    """Evidence of a dialogue, shared by the Turns made for one request (the same message objects)."""
    messages = ctx.messages
    key = (id(messages), len(messages), id(messages[-1]) if messages else 0, tuple(ctx.documents))
    hit = _EVIDENCE.get(key)
    if hit is not None and hit[0] is messages:
        return hit[1]  # no move_to_end: plan may build evidence in a worker thread, and eviction is cheap
    evidence = Evidence.from_context(ctx)
    _EVIDENCE[key] = (messages, evidence)  # holding the list keeps its id from being reused
    while len(_EVIDENCE) > 32:
        _EVIDENCE.popitem(last=False)
    return evidence


def is_profile_empty(profile: Profile | None) -> bool:
    return profile is None or profile.is_empty()
