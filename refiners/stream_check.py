"""The rule refiners over a reply that arrives in pieces: each sentence is checked once, as soon as it
is complete, and gets the verdict a check of the whole reply would give it.

That holds because each refiner that streams (a ``SentenceRefiner``, see ``refiners.base``) reads
only backward: factuality's rules read a value's sentence, the lines that head its list item and
the words after the value before it; a refiner that declares ``sentence_local`` reads the sentence
itself (coherence's garbled ids and contradictions, persona's units and register) and whether it
opens the reply (persona's greeting). So a sentence is judged against the reply *so far*: the
whole check's work, spread over the stream, never repeated per sentence.

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
from dataclasses import dataclass, field
from typing import Any

from refiners.base import Refinement, Refiner, RefinerStep, SentenceRefiner, SentenceReview, SentenceRevision
from refiners.turn import RefinerTurn

log = logging.getLogger("rein.stream_check")

# Handed to a refiner in front of a sentence that does not open the reply: its rules anchored at the
# start of the reply (a greeting, "Hey") must not fire on a later sentence. Invisible, never sent.
_NOT_FIRST = "\u2060"
# Characters of a streamed reply checked sentence by sentence; past them the rest streams as written
# (the trailer says from which sentence). The refinery passes the policy's max_revision_chars, the
# length past which a whole draft is not read either; this default bounds a check built by hand.
MAX_CHECKED_CHARS = 100_000


class BySentence:
    """A ``SentenceRefiner`` made of a refiner that declares ``sentence_local = True``: its
    ``revise`` is given one sentence at a time, its spacing kept as it was."""

    def __init__(self, refiner: Refiner):
        self.refiner = refiner
        self.name = refiner.name

    def applies(self, turn: Any) -> bool:
        return self.refiner.applies(turn)

    def check(self, turn: Any, text: str) -> Any:
        return self.refiner.check(turn, text)

    async def revise(self, turn: Any, text: str) -> Any:
        return await self.refiner.revise(turn, text)

    def consults(self, turn: RefinerTurn) -> bool:
        return turn.can_consult()

    def sentence_review(self, turn: RefinerTurn) -> SentenceReview:
        return _Revising(self.refiner, turn)


class _Revising:
    def __init__(self, refiner: Refiner, turn: RefinerTurn):
        self.refiner, self.turn = refiner, turn

    async def sentence(self, reply: str, start: int, end: int, text: str) -> SentenceRevision:
        body = text.strip()
        if not body:
            return SentenceRevision(text)
        lead, trail = text[:len(text) - len(text.lstrip())], text[len(text.rstrip()):]
        first = start == 0
        try:
            revision = await self.refiner.revise(self.turn, body if first else _NOT_FIRST + body)
        except Exception as e:  # one broken refiner must not break the reply
            return SentenceRevision(text, [f"failed ({type(e).__name__}): kept the sentence"])
        out = revision.text.replace(_NOT_FIRST, "", 1) if not first else revision.text
        flags = list(revision.flags)
        if out.strip() == body or not out.strip():
            return SentenceRevision(text, [], flags)
        return SentenceRevision(lead + out.strip() + trail, [revision.feedback], flags)


def sentence_refiner(refiner: Refiner) -> SentenceRefiner | None:
    """The refiner as one that streams: itself when it implements ``SentenceRefiner``, a
    ``BySentence`` when it declares ``sentence_local = True``; None: it reads the whole reply."""
    if isinstance(refiner, SentenceRefiner):
        return refiner
    return BySentence(refiner) if getattr(refiner, "sentence_local", False) is True else None


@dataclass
class _Step:
    changed: int = 0
    notes: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    ms: float = 0.0


class SentenceCheck:
    """The turn's streaming refiners over one reply, sentence by sentence (see the module's
    docstring). ``refiners``: in running order, each a ``SentenceRefiner``."""

    def __init__(self, turn: RefinerTurn, refiners: dict[str, SentenceRefiner], offload: bool = False,
                 max_chars: int = MAX_CHECKED_CHARS):
        self.turn = turn
        self.refiners = refiners
        self.offload = offload  # a big dialogue: its evidence is built in a worker thread
        self.max_chars = max_chars
        self.length = 0         # characters of the reply so far
        self._text = ""         # the reply so far, joined when read (self.text)
        self._pieces: list[str] = []
        self.final: list[str] = []
        self.changed: list[int] = []  # sentence numbers (1-based) the checks changed
        self._steps = {n: _Step() for n in self.refiners}
        self._ready: asyncio.Task | None = None
        self._reviews: dict[str, SentenceReview] | None = None  # of the refiners that apply, made once
        self.skipped: dict[str, str] = {}  # refiner -> the exception's type, for the log
        self._checked_to = 0  # the text before this went through sentence(); the rest went out as written

    def start(self) -> None:
        """Build the turn's evidence while the agent is still thinking, off the loop when it is big."""
        if self.offload and self._ready is None and self.refiners:
            self._ready = asyncio.get_running_loop().create_task(asyncio.to_thread(lambda: self.turn.evidence))
            self.turn.ctx.facts.reading = self._ready  # (the read ahead finds it being read: not read twice)

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
        reply = self.text
        original = reply[start:end]
        text = original
        if self._reviews is None:
            self._reviews = await self._start_reviews()
        for name, review in list(self._reviews.items()):
            step = self._steps[name]
            began = time.perf_counter()
            before = text
            try:
                verdict = await review.sentence(reply, start, end, text)
            except Exception as e:  # fail open: the sentence goes out as it was, the refiner stops here
                self._skip(name, e)
            else:
                text = verdict.text
                step.notes += verdict.notes
                step.flags += verdict.flags
            if text != before:
                step.changed += 1
            step.ms += (time.perf_counter() - began) * 1000
        self.final.append(text)
        self._checked_to = end
        if text != original:
            self.changed.append(len(self.final))
        return text

    async def _start_reviews(self) -> dict[str, SentenceReview]:
        """Each applying refiner's review for this reply, once the evidence is ready."""
        if self._ready is not None:
            try:
                await self._ready
            except Exception as e:  # each refiner that reads the evidence fails open on its own below
                log.warning("stream check: the evidence could not be built in a worker thread", exc_info=e)
        reviews = {}
        for name, refiner in self.refiners.items():
            try:
                review = refiner.sentence_review(self.turn) if refiner.applies(self.turn) else None
            except Exception as e:
                self._skip(name, e)
                continue
            if review is not None:
                reviews[name] = review
        return reviews

    def _skip(self, name: str, error: Exception) -> None:
        """A refiner that raised is skipped for the rest of the reply; the reply is never lost to it."""
        if self._reviews is not None:
            self._reviews.pop(name, None)
        if name not in self.skipped:
            self.skipped[name] = type(error).__name__
            log.warning("stream check: %s raised, skipped for the rest of the reply", name, exc_info=error)

    def skipped_notes(self) -> list[str]:
        """Fail-open notes for the turn (x-rein-fail-open): which refiner stopped checking, in words."""
        notes = [f"{name}: internal error, sentences sent as written" for name in self.skipped]
        if self.length > self.max_chars:
            notes.append(f"stream_check: reply past {self.max_chars} characters, the rest sent unchecked")
        return notes

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


__all__ = ["BySentence", "MAX_CHECKED_CHARS", "SentenceCheck", "sentence_refiner"]
