"""Coherence: the reply against the dialogue so far — it should answer what was last asked and not
contradict an earlier assistant turn.

Values change legitimately over a dialogue (a second option's price, a new total after a change), so
the rules here only *report*: a value that contradicts the one value an earlier turn gave for the
same record and attribute is flagged, and a question the reply leaves open is handed to the model
when one is configured. The one rewrite the rules make is an id the reply garbles (two neighbouring
characters swapped) that the assistant spelled right before and nothing else in the dialogue holds.
"""
from __future__ import annotations

import re

from refiners.base import Check, Revision
from refiners.claims import Claim, find_claims, render, replace_spans
from refiners.evidence import FACT_SOURCES, Sentences, near_words, words
from refiners.id_typos import transposed
from refiners.turn import RefinerTurn

# A sentence that says the value changed on purpose is not a contradiction.
_CHANGE = re.compile(r"\b(?:now|new|updated?|changed?|instead|actually|correct(?:ion|ed)?|sorry|rebooked|"
                     r"rescheduled|moved|no longer|remaining|difference|after|additional|extra)\b", re.I)
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
# Bounded reading: a message of hundreds of questions would all go to the model as "possibly
# unanswered". The last ones are what the reply answers.
MAX_QUESTIONS = 8
QUESTION_CHARS = 300
_ID_TOKEN = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9_-]{2,}")


def _slot(question: str) -> str | None:
    return next((kind for pattern, kind in _SLOTS if pattern.search(question)), None)


class CoherenceRefiner:
    name = "coherence"
    # Its rules (garbled ids, contradictions) read one sentence; the model, when asked, the whole reply.
    sentence_local = True
    INSTRUCTIONS = ("Check that the reply answers the user's last message and does not contradict what the "
                    "assistant said earlier. If it fails, rewrite it so it answers and agrees, keeping it short.")

    def applies(self, turn: RefinerTurn) -> bool:
        """Before the draft: something in the dialogue the reply can fall out of step with."""
        has_values = bool(turn.evidence.index.assistant_keyed or turn.evidence.index.assistant_ids)
        return has_values or bool(turn.questions() and turn.evidence.has(*FACT_SOURCES))

    def _id_fixes(self, turn: RefinerTurn, text: str, claims: list[Claim]) -> list[tuple[Claim, str]]:
        """Ids the reply garbles that the assistant spelled right before (and no one else said)."""
        said = turn.evidence.index.assistant_ids
        out = []
        for claim in (c for c in claims if c.kind == "id"):
            if claim.value in turn.evidence.ids:
                continue
            near = [i for i in said if transposed(claim.value, i)]
            if len(near) == 1:
                out.append((claim, near[0]))
        return out

    def _contradictions(self, turn: RefinerTurn, text: str, claims: list[Claim]) -> list[str]:
        """Values that disagree with the one value an earlier assistant turn gave for the same record
        (an id named in both sentences) and the same attribute (the words right before the value)."""
        earlier = turn.evidence.index.assistant_keyed
        if not earlier:
            return []
        sentences = Sentences(text)
        out = []
        held: dict[str, list[int]] = {}  # record id -> where its earlier facts are (a claim looks only there)
        for n, f in enumerate(earlier):
            for entity in dict.fromkeys(f.entities):
                held.setdefault(entity, []).append(n)
        for claim in (c for c in claims if c.kind in ("money", "date", "time")):
            if turn.evidence.seen_outside_assistant(claim):
                continue
            s, e = sentences.bounds(claim.start, claim.end)
            if _CHANGE.search(text[s:e]):
                continue
            ids = {t.lstrip("#").upper() for t in _ID_TOKEN.findall(text[s:e])}
            near = near_words(text, claim)
            if not ids or not near:
                continue
            same = [f for f in (earlier[n] for n in sorted({n for i in ids for n in held.get(i, ())}))
                    if f.kind == claim.kind and near & f.key]  # (in the dialogue's order)
            values = {repr(f.value) for f in same}
            if len(values) == 1 and not any(_same(claim, f.value) for f in same):
                out.append(f"{claim.text} (earlier {same[0].display} for {' '.join(sorted(ids & set(same[0].entities)))})")
        return out

    def _unanswered(self, turn: RefinerTurn, text: str, claims: list[Claim]) -> tuple[list[str], list[str]]:
        """(questions whose kind of answer — a date for "when", an amount for "how much" — the reply
        lacks, questions that share few words with the reply): both are for the model to judge."""
        kinds = {c.kind for c in claims}
        if _BECAUSE.search(text):
            kinds.add("reason")
        questions = self._questions(turn)
        if not questions:
            return [], []
        draft_words = words(text)  # (read only when there is a question to compare it with)
        open_, unsure = [], []
        for q in questions:
            slot = _slot(q)
            q_words = words(q)
            if slot and slot not in kinds and len(q_words & draft_words) < 2:
                open_.append(q)
            elif not slot and len(q_words) >= 2 and len(q_words & draft_words) / len(q_words) < 0.5:
                unsure.append(q)
        return open_, unsure

    @staticmethod
    def _questions(turn: RefinerTurn) -> list[str]:
        """The last MAX_QUESTIONS questions of the user's message, each cut to QUESTION_CHARS; the
        rest are noted as skipped (they would also go into the model's prompt)."""
        questions = turn.questions()
        if len(questions) > MAX_QUESTIONS:
            note = f"coherence: read the last {MAX_QUESTIONS} of {len(questions)} questions in the user's message"
            if note not in turn.notes:
                turn.notes.append(note)
            questions = questions[-MAX_QUESTIONS:]
        return [q[:QUESTION_CHARS] for q in questions]

    def check(self, turn: RefinerTurn, text: str) -> Check:
        if not self.applies(turn):
            return Check(skip_reason="nothing earlier to be coherent with")
        claims = find_claims(text)  # once: each rule reads the kinds it needs
        findings = [f"garbles an id said earlier: {c.text} (earlier {v})" for c, v in self._id_fixes(turn, text, claims)]
        findings += [f"contradicts an earlier turn: {c}" for c in self._contradictions(turn, text, claims)]
        open_, unsure = self._unanswered(turn, text, claims)
        if findings:
            return Check(findings=findings + [f"leaves unanswered: {q}" for q in open_])
        # Rules cannot tell a question left open from one answered in other words: the model decides.
        return Check(undecided=bool(open_ or unsure))

    async def revise(self, turn: RefinerTurn, text: str) -> Revision:
        calls = turn.budget.calls
        notes, flags = [], []
        claims = find_claims(text)
        fixes = self._id_fixes(turn, text, claims)
        text = replace_spans(text, [(c.start, c.end, render(c, v, "id")) for c, v in fixes])
        notes += [f"{c.text} → {v} (as said earlier)" for c, v in fixes]
        if fixes:
            claims = find_claims(text)  # the revised text's own
        flags += [f"contradicts an earlier turn: {c}" for c in self._contradictions(turn, text, claims)]
        open_, _ = self._unanswered(turn, text, claims)
        if turn.can_consult() and (flags or open_ or turn.thorough):
            context = f"Dialogue so far:\n{turn.dialogue()}"
            if open_:
                context += "\nPossibly unanswered: " + " ".join(open_)
            if flags:
                context += "\nPossibly contradicting earlier turns: " + "; ".join(flags)
            text, feedback = await turn.consult("coherence", self.INSTRUCTIONS, context, text)
            notes.append(feedback)
        notes += flags
        if open_ and not turn.can_consult():
            notes.append("possibly open: " + " ".join(open_) + " (no model consulted)")
        return Revision(text=text, feedback="; ".join(n for n in notes if n) or "no change: the reply follows the dialogue",
                        model_calls=turn.budget.calls - calls, flags=flags)


def _same(claim: Claim, value) -> bool:
    from refiners.claims import same_value

    return same_value(claim.kind, claim.value, value)
