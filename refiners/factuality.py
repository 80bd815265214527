"""Factuality: the draft's values against facts about the same thing.

A value in the draft is checked only against a fact about the same record (named by its id in the
sentence, or by the heading of the list item it sits in) and the same attribute (the words naming
the value match the fact's key), compared by type (``06:00:00`` = 6:00 AM, ``2024-05-24`` = May
24th, ``$1,234`` = 1234.00). It is never "corrected" when rein has seen the value anywhere (a tool,
a document, the user, an earlier turn), when it follows from the amounts in view by simple
arithmetic, or when the words around it say it is derived (a total, a remaining balance, a refund).
A status word is a claim only when the sentence binds it to a record that has a status. When more
than one fact could apply, nothing changes and a note says so. Under ``mode: flag`` contradictions
are reported (header, span) and the reply is left as the agent wrote it.
"""
from __future__ import annotations

import asyncio
import difflib
import re
from dataclasses import replace

from policies.messages import ToolMessage, text_of
from refiners.base import Check, Revision, SentenceRevision
from refiners.claims import find_claims, read_claims, replace_spans
from refiners.evidence import Evidence
# Re-exported: the checker is read through this module (tests, benches).
from refiners.fact_checker import CHECKED, FACT_SOURCES, Checker, Finding  # noqa: F401
from refiners.text import GrowingSentences
from refiners.turn import RefinerTurn

_PARTICIPLE = {"delivered", "cancelled", "refunded", "returned", "approved", "denied", "declined", "confirmed",
               "booked", "scheduled", "completed", "paid", "resolved", "escalated", "suspended", "closed",
               "waitlisted"}


def _status_edit(text: str, start: int, end: int, new: str) -> tuple[int, int, str]:
    """Keep the sentence grammatical: 'has shipped' → 'has been delivered' / 'is in transit'."""
    before = text[max(0, start - 12):start]
    m = re.search(r"\b(has|have)\s+(?:been\s+)?$", before)
    if not m or new in ("shipped", "failed", "expired"):
        return start, end, new
    aux_start = start - (len(before) - m.start())
    verb = m.group(1)
    if new in _PARTICIPLE:
        return aux_start, end, f"{verb} been {new}"
    return aux_start, end, ("is " if verb == "has" else "are ") + new


def _edit(text: str, f: Finding) -> tuple[int, int, str]:
    """The span of ``text`` a finding replaces, and with what (a status keeps its sentence grammatical)."""
    if f.claim.kind == "status":
        return _status_edit(text, f.claim.start, f.claim.end, f.new)
    return f.claim.start, f.claim.end, f.new


def deterministic_pass(text: str, evidence: Evidence, apply: bool = True) -> tuple[str, list[str], list[str]]:
    """(text with contradictions fixed when ``apply``, what contradicts the evidence, notes). No model."""
    checker = Checker(text, evidence)
    found = checker.findings()
    edits = [_edit(text, f) for f in found]
    fixed = [f.describe() for f in found]
    names = _name_edits(text, evidence, fixed, {(s, e) for s, e, _ in edits})
    edits += names
    return (replace_spans(text, edits) if apply else text), fixed, checker.notes + evidence.notes


def _name_edits(text: str, evidence: Evidence, fixed: list[str], taken: set[tuple[int, int]]):
    """Misspelt names of things in the tool results ('Hotel Maris' for 'Hotel Marais'): one close name only."""
    tables = evidence.name_tables()  # (built once per evidence: the plan and the refine loop share it)
    if not tables:
        return []
    said = evidence.index.names
    out = []
    # Where a capitalised word starts (after no word character): a run of n of them can start only
    # there. Found once, with a pattern that is looked for only at capitals.
    starts = [m.start() for m in _CAPITAL.finditer(text)]
    for n, (spelt, by_initial) in tables.items():
        run = _run(n)
        for at in starts:
            m = run.match(text, at)
            if m is None:
                continue
            seq, start = m.group(0), at
            end = start + len(seq)
            if seq in said or any(a < end and start < b for a, b in taken):
                continue
            low = seq.lower()
            if low in spelt:
                continue
            close = [name for name, lowered in by_initial.get(low[0], ()) if abs(len(name) - len(low)) <= 2
                     and _close(low, lowered)]
            if len(close) == 1:
                out.append((start, end, close[0]))
                taken.add((start, end))
                fixed.append(f"{seq} → {close[0]} (the tool result)")
    return out


_CAPITAL = re.compile(r"[A-Z](?<!\w[A-Z])")


def _run(n: int) -> re.Pattern:
    """n capitalised words in a row, ending a word: what ``(?=\\b(...)\\b)`` found at every position
    the first word starts (re's cache keeps it compiled)."""
    return re.compile(r"[A-Z][a-z]+(?:\s+[A-Z][a-z]+){%d}\b" % (n - 1))


def _close(a: str, b: str) -> bool:
    """``a`` and ``b`` are 85% alike; the letters they share bound the ratio, cheaply, before it is computed.
    Kept by the pair: a list reply repeats its capitalised runs ("Screen Size") on every line."""
    found = _CLOSE.get((a, b))
    if found is None:
        if len(_CLOSE) >= 4096:
            _CLOSE.clear()
        matcher = difflib.SequenceMatcher(None, a, b)
        found = _CLOSE[(a, b)] = matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85 and _words_close(a, b)
    return found


def _words_close(a: str, b: str) -> bool:
    """Each word that differs is itself close ("Maris"/"Marais"), not another word for the same
    place ("Munich"/"München" is an exonym, not a misspelling)."""
    wa, wb = a.split(), b.split()
    return len(wa) != len(wb) or all(x == y or difflib.SequenceMatcher(None, x, y).ratio() >= 0.8 for x, y in zip(wa, wb))


_CLOSE: dict[tuple[str, str], bool] = {}


class FactualityRefiner:
    """A ``SentenceRefiner``: a value is judged by its sentence and the text before it, so a stream
    is checked as it comes (``FactualitySentences``)."""
    name = "factuality"
    INSTRUCTIONS = ("Compare every amount, date, ID, name and status in the reply with the evidence. "
                    "If one is contradicted, correct it to match the evidence; change nothing else.")

    def __init__(self, deterministic: bool = True, mode: str = "rewrite"):
        self.deterministic = deterministic
        self.mode = mode

    def applies(self, turn: RefinerTurn) -> bool:
        # Asked before the draft exists, often on turns that need nothing: answer from the messages
        # without building the evidence.
        return bool(turn.ctx.documents) or any(isinstance(m, ToolMessage) and text_of(m).strip()
                                                for m in turn.ctx.messages)

    def check(self, turn: RefinerTurn, text: str) -> Check:
        if not self.applies(turn):
            return Check(skip_reason="no tool results or documents in the dialogue")
        _, fixed, notes = _checked(turn, text)
        if fixed:
            return Check(findings=[f"contradicts the evidence: {fixed[0]}"] + fixed[1:])
        return Check(skip_reason="no value contradicts a fact about the same thing"
                     + (f" ({'; '.join(notes[:2])})" if notes else ""))

    async def revise(self, turn: RefinerTurn, text: str) -> Revision:
        calls = turn.budget.calls
        notes: list[str] = []
        flags: list[str] = []
        if self.deterministic:
            fixed_text, fixed, left = _checked(turn, text)
            if self.mode == "flag":
                flags += fixed
                notes += [f"flagged {f}" for f in fixed]
            else:
                text = fixed_text
                notes += [f"fixed {f}" for f in fixed]
            notes += left[:3]
        if turn.can_consult() and turn.thorough:
            evidence = "\n".join(t for t in turn.evidence_texts()[:12])[-2000:]
            text, feedback = await turn.consult("factuality", self.INSTRUCTIONS, f"Evidence:\n{evidence}", text)
            notes.append(feedback)
        return Revision(text=text, feedback="; ".join(n for n in notes if n) or "no change: claims agree with the evidence",
                        model_calls=turn.budget.calls - calls, flags=flags)

    def consults(self, turn: RefinerTurn) -> bool:
        """The model reads the reply only on a thorough turn (the fixed chain)."""
        return turn.can_consult() and turn.thorough

    def sentence_review(self, turn: RefinerTurn) -> FactualitySentences | None:
        return FactualitySentences(turn, self.mode) if self.deterministic else None


def _checked(turn: RefinerTurn, text: str) -> tuple[str, list[str], list[str]]:
    """``deterministic_pass`` on ``text``, once per text and turn (the planner's check and the
    refiner's revision ask the same question)."""
    if not any(c.kind in CHECKED for c in find_claims(text)):
        return text, [], []  # nothing to check: the evidence need not be built
    return turn.ctx.facts.remembered(turn.ctx, ("factuality", text), lambda ev: deterministic_pass(text, ev))


# Claims are read from a little before the sentence, so a pattern's look-behind sees what the whole
# reply's scan saw; only those that start inside the sentence are its own.
_MARGIN = 40
# Claims checked between two yields to the event loop: one very long sentence does not hold it.
_CLAIMS_PER_YIELD = 32


class FactualitySentences:
    """Factuality over a streamed reply: each sentence's values are checked as the sentence
    completes, against the reply so far, and get the verdict ``deterministic_pass`` gives them on
    the whole reply (its rules read only backward from a value: its sentence, the lines that head
    its list item, the words after the value before it)."""

    def __init__(self, turn: RefinerTurn, mode: str):
        self.turn = turn
        self.mode = mode
        self.sentences = GrowingSentences()
        self.checker: Checker | None = None

    async def sentence(self, reply: str, start: int, end: int, text: str) -> SentenceRevision:
        self.sentences.grow(reply, end)
        lo = max(0, start - _MARGIN)
        claims = [c for c in read_claims(reply[lo:end]) if c.start >= start - lo]
        original = reply[start:end]
        if not any(c.kind in CHECKED for c in claims):
            return SentenceRevision(text)  # nothing to check: the evidence need not be built
        evidence = self.turn.evidence
        if self.checker is None:
            self.checker = Checker("", evidence)
        checker = self.checker
        checker.reread(reply, self.sentences, start)
        found = []
        for i, c in enumerate(claims):
            if i and i % _CLAIMS_PER_YIELD == 0:
                await asyncio.sleep(0)  # a long sentence full of values: other requests are answered meanwhile
            f = checker.check(replace(c, start=c.start + lo, end=c.end + lo) if lo else c)
            if f is not None:
                found.append(f)
        edits = [(s - start, e - start, new) for s, e, new in (_edit(reply, f) for f in found)]
        fixed = [f.describe() for f in found]
        edits += _name_edits(original, evidence, fixed, {(s, e) for s, e, _ in edits})
        notes, checker.notes = checker.notes, []
        if self.mode == "flag":
            return SentenceRevision(text, notes, fixed)
        return SentenceRevision(replace_spans(original, edits) if edits else text,
                                notes + [f"fixed {f}" for f in fixed])
