"""Factuality: the draft's claims against what rein can see (tool results, operator documents,
what the user stated). A deterministic pass fixes amounts, dates, times, IDs, numbers, names and
statuses that disagree with the evidence; the model is asked only about claims nothing settles."""
from __future__ import annotations

import difflib
import re

from refiners.base import Check, Revision
from refiners.claims import find_claims, render, replace_spans
from refiners.evidence import Evidence, context_words, near_words, sentence_of, words
from refiners.turn import Turn

FACT_SOURCES = ("tool", "document")
_PARTICIPLE = {"delivered", "cancelled", "refunded", "returned", "approved", "denied", "declined", "confirmed",
               "booked", "scheduled", "completed", "paid", "resolved", "escalated", "suspended", "closed",
               "waitlisted"}


def _sentence_terms(text: str, start: int, end: int) -> set[str]:
    s, e = sentence_of(text, start, end)
    sentence = text[s:e]
    return words(sentence) | {c.value for c in find_claims(sentence, ("id",))}


def _status_edit(text: str, start: int, end: int, new: str) -> tuple[int, int, str]:
    """Keep the sentence grammatical: 'has shipped' → 'has been delivered' / 'is in transit'."""
    m = re.search(r"\b(has|have)\s+$", text[max(0, start - 6):start])
    if not m or new in ("shipped", "failed", "expired"):
        return start, end, new
    aux_start = start - (len(text[max(0, start - 6):start]) - m.start())
    verb = m.group(1)
    if new in _PARTICIPLE:
        return aux_start, end, f"{verb} been {new}"
    return aux_start, end, ("is " if verb == "has" else "are ") + new


def deterministic_pass(text: str, evidence: Evidence) -> tuple[str, list[str], list[str]]:
    """(fixed text, what was fixed, claims nothing could verify). No model, microseconds."""
    edits: list[tuple[int, int, str]] = []
    fixed: list[str] = []
    unverified: list[str] = []
    for claim in find_claims(text):
        ctx = context_words(text, claim)
        sentence = _sentence_terms(text, claim.start, claim.end)
        verdict, fact = evidence.judge(claim, ctx, sentence, FACT_SOURCES, near_words(text, claim))
        if verdict == "unverified" and claim.kind in ("id", "money", "date", "time"):
            verdict, fact = evidence.judge(claim, ctx, sentence, ("user",), near_words(text, claim))
        if verdict == "contradicted" and fact is not None:
            new = render(claim, fact.value, fact.kind)
            if new == claim.text:
                continue
            edit = (claim.start, claim.end, new)
            if claim.kind == "status":
                edit = _status_edit(text, claim.start, claim.end, new)
            edits.append(edit)
            where = "the tool result" if fact.source == "tool" else f"the {fact.source}"
            fixed.append(f"{claim.text} → {new} ({where}: {' '.join(sorted(fact.key)) or fact.kind})")
        elif verdict == "unverified" and claim.kind in ("id", "money", "date", "time", "percent"):
            unverified.append(claim.text)
    edits += _name_edits(text, evidence, fixed, {(s, e) for s, e, _ in edits})
    return replace_spans(text, edits), fixed, unverified


def _name_edits(text: str, evidence: Evidence, fixed: list[str], taken: set[tuple[int, int]]):
    """Misspelt names of things in the tool results ('Hotel Maris' for 'Hotel Marais')."""
    names = {f.display for f in evidence.of(*FACT_SOURCES) if f.kind == "name" and len(f.display) >= 5}
    out = []
    for name in sorted(names):
        n = len(name.split())
        run = re.compile(r"(?=\b([A-Z][a-z]+(?:\s+[A-Z][a-z]+){%d})\b)" % (n - 1))
        for m in run.finditer(text):
            seq, start = m.group(1), m.start(1)
            end = start + len(seq)
            if seq == name or seq.lower() in (name.lower() + "s", name.lower() + "es") or seq in names:
                continue
            if any(a < end and start < b for a, b in taken):
                continue
            if difflib.SequenceMatcher(None, seq.lower(), name.lower()).ratio() >= 0.8:
                out.append((start, end, name))
                taken.add((start, end))
                fixed.append(f"{seq} → {name} (the tool result)")
    return out


class FactualityRefiner:
    name = "factuality"
    INSTRUCTIONS = ("Compare every amount, date, ID, name and status in the reply with the evidence. "
                    "If one is contradicted or unsupported, correct it to match the evidence; change nothing else.")

    def __init__(self, deterministic: bool = True):
        self.deterministic = deterministic

    def applies(self, turn: Turn) -> bool:
        return turn.evidence.has(*FACT_SOURCES, "user")

    def check(self, turn: Turn, text: str) -> Check:
        if not self.applies(turn):
            return Check(skip_reason="no tool results or facts in the dialogue")
        _, fixed, unverified = deterministic_pass(text, turn.evidence)
        if fixed:
            return Check(findings=[f"contradicts the evidence: {fixed[0]}"] + fixed[1:])
        if unverified and turn.evidence.has(*FACT_SOURCES):
            return Check(findings=[f"unverified: {', '.join(unverified[:3])}"])
        return Check(skip_reason="every checkable claim agrees with the evidence" if find_claims(text)
                     else "no checkable claims")

    async def revise(self, turn: Turn, text: str) -> Revision:
        calls = turn.budget.calls
        notes: list[str] = []
        unverified: list[str] = []
        if self.deterministic:
            text, fixed, unverified = deterministic_pass(text, turn.evidence)
            notes += [f"fixed {f}" for f in fixed]
        if turn.can_consult() and (turn.thorough or (unverified and turn.evidence.has(*FACT_SOURCES))):
            evidence = "\n".join(t for t in turn.evidence_texts()[:12])[-2000:]
            context = f"Evidence:\n{evidence}" + (f"\nNot verified yet: {', '.join(unverified)}" if unverified else "")
            text, feedback = await turn.consult("factuality", self.INSTRUCTIONS, context, text)
            notes.append(feedback)
        elif unverified:
            notes.append(f"could not verify {', '.join(unverified[:3])} (no model consulted)")
        return Revision(text=text, feedback="; ".join(n for n in notes if n) or "no change: claims agree with the evidence",
                        model_calls=turn.budget.calls - calls)
