"""The rule refiners over a reply that arrives in pieces: each sentence is checked once, as soon as it
is complete, and gets the verdict a check of the whole reply would give it.

That holds because the rules read only backward from a value: its sentence, the lines that head
its list item, the words after the value before it (factuality), the sentence itself (coherence's
garbled ids and contradictions, persona's units and register), and whether it opens the reply
(persona's greeting). So a sentence is judged against the reply *so far*, and only the values
inside it are read: the whole check's work, spread over the stream, never repeated per sentence.

    check = refinery.sentence_check(ctx)      # None: a model refiner may run, hold the whole reply
    check.extend("Your order A1234 was delivered on March 15.")
    text = await check.sentence(0, 44)        # "Your order A1234 was shipped on March 14."
    check.refinement()                        # for the headers: which refiners changed what

Linear in the reply and bounded per sentence: the text is joined once per sentence, not per chunk,
each value reads a bounded window of it, and past ``max_chars`` (``MAX_CHECKED_CHARS``) checking
stops: the rest goes out as written and ``skipped_notes`` says so (``x-rein-fail-open``).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from refiners.base import Refinement, Refiner, RefinerStep
from refiners.claims import read_claims, replace_spans
from refiners.text import Sentences, _SENTENCE_END
from refiners.turn import Turn

log = logging.getLogger("rein.stream_check")

# Claims are read from a little before the sentence, so a pattern's look-behind sees what the whole
# reply's scan saw; only those that start inside the sentence are its own.
_MARGIN = 40
# Handed to a refiner in front of a sentence that does not open the reply: its rules anchored at the
# start of the reply (a greeting, "Hey") must not fire on a later sentence. Invisible, never sent.
_NOT_FIRST = "\u2060"
# Characters of a streamed reply checked sentence by sentence; past them the rest streams as written
# (the trailer says from which sentence). The refinery passes the policy's max_revision_chars, the
# length past which a whole draft is not read either; this default bounds a check built by hand.
MAX_CHECKED_CHARS = 100_000
# Claims checked between two yields to the event loop: one very long sentence does not hold it.
_CLAIMS_PER_YIELD = 32


class GrowingSentences(Sentences):
    """Sentence ends of a text that grows at its end: each end is found once."""

    def __init__(self) -> None:
        self.text = ""
        self.ends: list[int] = []


@dataclass
class _Step:
    changed: int = 0
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    ms: float = 0.0


class SentenceCheck:
    def __init__(self, turn: Turn, refiners: dict[str, Refiner], order: list[str], offload: bool = False,
                 max_chars: int = MAX_CHECKED_CHARS):
        self.turn = turn
        self.refiners = {n: refiners[n] for n in order if n in refiners}
        self.offload = offload  # a big dialogue: its evidence is built in a worker thread
        self.max_chars = max_chars
        self.length = 0         # characters of the reply so far
        self._text = ""         # the reply so far, joined when read (self.text)
        self._pieces: list[str] = []
        self.final: list[str] = []
        self.changed: list[int] = []  # sentence numbers (1-based) the checks changed
        self._sentences = GrowingSentences()
        self._scanned = 0
        self._steps = {n: _Step() for n in self.refiners}
        self._checker = None
        self._ready: asyncio.Task | None = None
        self._applies: dict[str, bool] | None = None
        self.skipped: dict[str, str] = {}  # refiner -> the exception's type, for the log
        self._checked_to = 0  # the text before this went through sentence(); the rest went out as written

    def start(self) -> None:
        """Build the turn's evidence while the agent is still thinking, off the loop when it is big."""
        if self.offload and self._ready is None and "factuality" in self.refiners:
            self._ready = asyncio.get_running_loop().create_task(asyncio.to_thread(lambda: self.turn.evidence))

    def extend(self, piece: str) -> None:
        # Pieces are joined when the text is read (once a sentence), not per chunk: a reply of n
        # chunks costs O(n) copies, not O(n) copies of the whole reply.
        self._pieces.append(piece)
        self.length += len(piece)

    @property
    def text(self) -> str:
        """The reply so far, as the agent wrote it."""
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text


    async def sentence(self, start: int, end: int) -> str:
        """The checked text of ``self.text[start:end]``, the next sentence (or the reply's rest)."""
        original = self.text[start:end]
        text = original
        if self._applies is None:
            self._applies = await self._which_apply()
        for name, refiner in self.refiners.items():
            if not self._applies[name]:
                continue
            step = self._steps[name]
            began = time.perf_counter()
            before = text
            try:
                if name == "factuality" and getattr(refiner, "deterministic", True):
                    text = await self._factuality(refiner, start, end)
                elif name != "factuality":
                    text = await self._revise(refiner, step, text, first=start == 0)
            except Exception as e:  # fail open: the sentence goes out as it was, the refiner stops here
                text = before
                self._skip(name, e)
            if text != before:
                step.changed += 1
            step.ms += (time.perf_counter() - began) * 1000
        self.final.append(text)
        self._checked_to = end
        if text != original:
            self.changed.append(len(self.final))
        return text

    async def _which_apply(self) -> dict[str, bool]:
        applies = {}
        if self._ready is not None:
            try:
                await self._ready
            except Exception as e:  # the evidence could not be built: no refiner that reads it can run
                self._skip("factuality", e)
        for name, refiner in self.refiners.items():
            try:
                applies[name] = name not in self.skipped and refiner.applies(self.turn)
            except Exception as e:
                applies[name] = False
                self._skip(name, e)
        return applies

    def _skip(self, name: str, error: Exception) -> None:
        """A refiner that raised is skipped for the rest of the reply; the reply is never lost to it."""
        if self._applies is not None:
            self._applies[name] = False
        if name not in self.skipped:
            self.skipped[name] = type(error).__name__
            log.warning("stream check: %s raised, skipped for the rest of the reply", name, exc_info=error)

    def skipped_notes(self) -> list[str]:
        """Fail-open notes for the turn (x-rein-fail-open): which refiner stopped checking, in words."""
        notes = [f"{name}: internal error, sentences sent as written" for name in self.skipped]
        if self.length > self.max_chars:
            notes.append(f"stream_check: reply past {self.max_chars} characters, the rest sent unchecked")
        return notes

    async def _factuality(self, refiner: Refiner, start: int, end: int) -> str:
        from refiners.factuality import CHECKED, Checker, _name_edits, _status_edit

        self._grow(end)
        lo = max(0, start - _MARGIN)
        claims = [c for c in read_claims(self.text[lo:end]) if c.start >= start - lo]
        original = self.text[start:end]
        if not any(c.kind in CHECKED for c in claims):
            return original  # nothing to check: the evidence need not be built
        if self._ready is not None:
            await self._ready
        evidence = self.turn.evidence
        if self._checker is None:
            self._checker = Checker("", evidence)
        checker = self._checker
        checker.text, checker.sentences = self.text, self._sentences
        checker._prev_end = start  # a value's naming words never reach back past its sentence's start
        step = self._steps["factuality"]
        found = []
        for i, c in enumerate(claims):
            if i and i % _CLAIMS_PER_YIELD == 0:
                await asyncio.sleep(0)  # a long sentence full of values: other requests are answered meanwhile
            claim = replace(c, start=c.start + lo, end=c.end + lo) if lo else c
            if claim.kind in CHECKED:
                f = checker._check(claim)
                if f is not None:
                    found.append(f)
            checker._prev_end = claim.end
        edits = []
        for f in found:
            edit = (f.claim.start, f.claim.end, f.new)
            if f.claim.kind == "status":
                edit = _status_edit(self.text, f.claim.start, f.claim.end, f.new)
            edits.append((edit[0] - start, edit[1] - start, edit[2]))
        fixed = [f.describe() for f in found]
        edits += _name_edits(original, evidence, fixed, {(s, e) for s, e, _ in edits})
        step.notes += checker.notes
        checker.notes = []
        if getattr(refiner, "mode", "rewrite") == "flag":
            step.flags += fixed
            return original
        step.notes += [f"fixed {f}" for f in fixed]
        return replace_spans(original, edits)

    def _grow(self, end: int) -> None:
        """Record the sentence ends up to ``end`` by the rule ``Sentences`` reads a whole text by."""
        s = self._sentences
        s.text = self.text
        for m in _SENTENCE_END.finditer(self.text, self._scanned, end):
            if m.group(0) == "." and m.end() < len(self.text) and not self.text[m.end()].isspace():
                continue
            s.ends.append(m.start())
        self._scanned = max(self._scanned, end)

    async def _revise(self, refiner: Refiner, step: _Step, text: str, first: bool) -> str:
        """A rule refiner (no model this turn) on one sentence, its spacing kept as it was."""
        body = text.strip()
        if not body:
            return text
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        given = body if first else _NOT_FIRST + body
        try:
            revision = await refiner.revise(self.turn, given)
        except Exception as e:  # one broken refiner must not break the reply
            step.notes.append(f"failed ({type(e).__name__}): kept the sentence")
            return text
        out = revision.text.replace(_NOT_FIRST, "", 1) if not first else revision.text
        step.flags += revision.flags
        if out.strip() == body or not out.strip():
            return text
        step.notes.append(revision.feedback)
        return lead + out.strip() + trail

    def refinement(self, draft: str | None = None) -> Refinement:
        steps = [RefinerStep(name=n, changed=s.changed > 0, flags=s.flags, ms=s.ms,
                             feedback="; ".join(dict.fromkeys(n for n in s.notes if n))[:500]
                             or "no change, sentence by sentence")
                 for n, s in self._steps.items()]
        draft = self.text if draft is None else draft
        # Text past the last checked sentence (the size limit, or a check that raised) went out as written.
        final = "".join(self.final) + draft[self._checked_to:]
        return Refinement(draft=draft, final=final, steps=steps,
                          plan_reason="checked sentence by sentence as the reply streamed",
                          notes=list(self.turn.notes))


__all__ = ["GrowingSentences", "SentenceCheck"]
