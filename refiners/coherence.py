"""Coherence: the reply against the dialogue so far. It must answer what was last asked and not
contradict an earlier assistant turn. Deterministic where the dialogue settles it (restore a value
the assistant stated before; answer from the tool results); the model for the rest."""
from __future__ import annotations

import re

from refiners.base import Check, Revision
from refiners.claims import Claim, find_claims, render, replace_spans
from refiners.evidence import context_words, near_words, words
from refiners.factuality import FACT_SOURCES, _sentence_terms, _status_edit
from refiners.turn import Turn

# A sentence that says the value changed on purpose is not a contradiction.
_CHANGE = re.compile(r"\b(?:now|new|updated?|changed?|instead|actually|correct(?:ion|ed)?|sorry|rebooked|"
                     r"rescheduled|moved|no longer)\b", re.I)
_SLOTS = [  # question words → the kind of value that answers it
    (re.compile(r"\bwhat time\b|\bat what hour\b", re.I), "time"),
    (re.compile(r"\bwhen\b|\bwhat (?:date|day)\b|\bhow long\b.*\barrive", re.I), "date"),
    (re.compile(r"\bhow much\b|\bcost\b|\bprice\b|\bpay(?:ing)?\b|\bcharg|\bwhat (?:is|was|'s) (?:the|my) "
                r"(?:total|refund|balance|fee)", re.I), "money"),
    (re.compile(r"^\s*why\b", re.I), "reason"),
    (re.compile(r"\bstatus\b|\bwhere is\b|\bwhere's\b|\bhas it (?:shipped|arrived)\b", re.I), "status"),
    (re.compile(r"\bwhat(?: is|'s) (?:the|my) [a-z ]*(?:number|id|code|reference)\b", re.I), "id"),
]


_BECAUSE = re.compile(r"\b(?:because|since|due to|as a result|the reason)\b", re.I)


def _slot(question: str) -> str | None:
    return next((kind for pattern, kind in _SLOTS if pattern.search(question)), None)


def _label(key: frozenset[str]) -> str:
    return " ".join(sorted(key - {"id"}, key=len, reverse=True)[:2]) or "it"


class CoherenceRefiner:
    name = "coherence"
    INSTRUCTIONS = ("Check that the reply answers the user's last message and does not contradict what the "
                    "assistant said earlier. If it fails, rewrite it so it answers and agrees, keeping it short.")

    def applies(self, turn: Turn) -> bool:
        """Before the draft: something in the dialogue the reply can fall out of step with."""
        has_values = any(f.source == "assistant" for f in turn.evidence.facts)
        return has_values or bool(turn.questions() and turn.evidence.has(*FACT_SOURCES))

    def _contradictions(self, turn: Turn, text: str) -> list[tuple[Claim, object]]:
        out = []
        for claim in find_claims(text):
            if claim.kind == "number":
                continue
            sentence = _sentence_terms(text, claim.start, claim.end)
            ctx = context_words(text, claim)
            verdict, fact = turn.evidence.judge(claim, ctx, sentence, ("assistant",), near_words(text, claim))
            if verdict != "contradicted" or fact is None:
                continue
            start = text.rfind(".", 0, claim.start) + 1
            if _CHANGE.search(text[start:claim.end + 40]):
                continue
            if turn.evidence.judge(claim, ctx, sentence, FACT_SOURCES, near_words(text, claim))[0] == "supported":
                continue  # the tools back the new value: the earlier turn was the wrong one
            out.append((claim, fact))
        return out

    def _unanswered(self, turn: Turn, text: str) -> tuple[list[str], list[str]]:
        """(questions the reply leaves open, questions rules cannot call either way)."""
        open_, unsure = [], []
        draft_kinds = {c.kind for c in find_claims(text)}
        if _BECAUSE.search(text):
            draft_kinds.add("reason")
        # A reply stating a tool record's values is about that record ("my train details?").
        draft_words = words(text) | self._records_stated(turn, text)
        for q in turn.questions():
            q_words = words(q)
            overlap = len(q_words & draft_words) / max(1, len(q_words))
            slot = _slot(q)
            if slot:  # "when ...?" is answered by a date, whatever words surround it
                if slot not in draft_kinds:
                    open_.append(q)
            elif overlap >= 0.5:
                continue
            elif overlap < 0.2 and len(q_words) >= 2 or self._keyed_fact(turn, q_words):
                open_.append(q)
            else:
                unsure.append(q)
        return open_, unsure

    @staticmethod
    def _records_stated(turn: Turn, text: str) -> set[str]:
        stated = {c.text for c in find_claims(text)}
        return {w for f in turn.evidence.of(*FACT_SOURCES) if f.display in stated for w in f.key}

    @staticmethod
    def _keyed_fact(turn: Turn, q_words: set[str]):
        """The one tool value whose name the question uses ("which seat ...?" → seat 23A), if unique."""
        hits = [f for f in turn.evidence.of(*FACT_SOURCES) if f.key and f.key <= q_words | {"id"} and f.key & q_words]
        return hits[0] if len({repr(f.value) for f in hits}) == 1 else None

    def _answer_from_evidence(self, turn: Turn, question: str, text: str) -> str | None:
        slot = _slot(question)
        q_words = words(question)
        if slot == "reason":
            return None
        if not slot:
            fact = self._keyed_fact(turn, q_words)
            return f"{_label(fact.key).capitalize()}: {fact.display}." if fact else None

        def score(f) -> int:
            return 2 * len(q_words & f.key) + len(q_words & f.record)

        facts = [f for f in turn.evidence.of(*FACT_SOURCES) if f.kind == slot]
        scored = sorted(facts, key=score, reverse=True)
        if not scored or len({repr(f.value) for f in scored if score(f) == score(scored[0])}) != 1:
            return None
        fact = scored[0]
        style = find_claims(fact.display)
        shown = render(style[0], fact.value, fact.kind) if style else fact.display
        if slot == "money" and not (style and style[0].kind == "money"):
            shown = f"{fact.value:,.2f}"  # an amount with no currency in view: no symbol guessed
        if slot == "date" and fact.value[0]:
            stub = Claim("date", "", 0, 0, fact.value, {"fmt": "md", "long": True, "year": True})
            shown = render(stub, fact.value, "date")
        return f"{_label(fact.key).capitalize()}: {shown}."

    def check(self, turn: Turn, text: str) -> Check:
        if not self.applies(turn):
            return Check(skip_reason="nothing earlier to be coherent with")
        findings = [f"contradicts an earlier turn: {c.text} (earlier {f.display})"
                    for c, f in self._contradictions(turn, text)]
        open_, unsure = self._unanswered(turn, text)
        findings += [f"leaves unanswered: {q}" for q in open_]
        return Check(findings=findings, undecided=bool(unsure) and not findings)

    async def revise(self, turn: Turn, text: str) -> Revision:
        calls = turn.budget.calls
        notes = []
        edits = []
        for claim, fact in self._contradictions(turn, text):
            new = render(claim, fact.value, fact.kind)
            edits.append(_status_edit(text, claim.start, claim.end, new) if claim.kind == "status"
                         else (claim.start, claim.end, new))
            notes.append(f"{claim.text} → {new} (as said earlier)")
        text = replace_spans(text, edits)
        open_, unsure = self._unanswered(turn, text)
        still_open = []
        for q in open_:
            answer = self._answer_from_evidence(turn, q, text)
            if answer and answer.split(": ", 1)[-1].rstrip(".") not in text:
                text = text.rstrip() + " " + answer
                notes.append(f"answered '{q}' from the tool results")
            else:
                still_open.append(q)
        if turn.can_consult() and (still_open or unsure or turn.thorough):
            context = f"Dialogue so far:\n{turn.dialogue()}"
            if still_open:
                context += "\nUnanswered: " + " ".join(still_open)
            text, feedback = await turn.consult("coherence", self.INSTRUCTIONS, context, text)
            notes.append(feedback)
        elif still_open:
            notes.append("open: " + " ".join(still_open) + " (no model consulted)")
        return Revision(text=text, feedback="; ".join(n for n in notes if n) or "no change: the reply follows the dialogue",
                        model_calls=turn.budget.calls - calls)
