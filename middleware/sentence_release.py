"""A stream's text released sentence by sentence, each once it has passed the checks.

The upstream's chunks are held only until the sentence they carry is complete (its end mark and the
character after it seen, so "3.5" is not a full stop) and checked; then they go out as the upstream
sent them — its ids, fields and chunking — with a changed value in the chunk it came in. A chunk that
carries the end of one sentence and the start of the next is split in two, both in its shape.
Tool-call chunks are never held: text before them is checked and released first. rein adds at most
one sentence of delay, and no sentence leaves unchecked.

    release = SentenceRelease(check, writer)
    for c in upstream_chunks: await release.add(c)
    await release.close()       # the rest of the text, checked; release.report says what happened
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from middleware.models.chunks import content_of, edits_between, piece_of, with_content
from refiners.stream_check import SentenceCheck

_ENDS = frozenset(".!?;\n")  # the sentence ends the refiners read a text by (refiners/text.py)


@dataclass
class StreamReport:
    """What rein did to a stream, for the trailing ``: rein {...}`` comment."""
    held: str = "none"                 # none | sentences | whole
    held_ms: float = 0.0               # the longest any text waited in rein
    sentences: int = 0
    changed: list[int] = field(default_factory=list)  # sentence numbers (1-based) rein changed

    def fields(self) -> dict[str, str]:
        out = {"x-rein-held": self.held, "x-rein-held-ms": f"{self.held_ms:.1f}"}
        if self.held == "sentences":
            out["x-rein-sentences"] = str(self.sentences)
            out["x-rein-changed-sentences"] = ",".join(map(str, self.changed)) or "none"
        return out


@dataclass
class _Held:
    chunk: dict[str, Any]
    start: int          # its text's span in the reply
    end: int
    at: float           # when it arrived
    sent: int = -1      # how far its text already went out (a split chunk); -1: none of it


class SentenceRelease:
    def __init__(self, check: SentenceCheck, writer: Callable[[dict[str, Any]], None]):
        self.check = check
        self.writer = writer
        self.report = StreamReport(held="sentences")
        self._held: list[_Held] = []
        self._released = 0   # the reply's text up to here went out
        self._scan = 0       # sentence ends are looked for from here
        self._broken = False  # the check raised: text is released unchecked from then on

    async def add(self, c: dict[str, Any]) -> None:
        content = content_of(c)
        if content:
            at = len(self.check.text)
            self.check.extend(content)
            self._held.append(_Held(c, at, at + len(content), time.perf_counter()))
            await self._release_sentences()
            return
        calls = any((ch.get("delta") or {}).get("tool_calls") for ch in c.get("choices") or [])
        if calls or any(ch.get("finish_reason") for ch in c.get("choices") or []):
            await self._release(len(self.check.text), last=True)  # the text before it is complete
        if self._held:  # behind text still being checked: keep the order
            self._held.append(_Held(c, len(self.check.text), len(self.check.text), time.perf_counter()))
        else:
            self.writer(c)

    async def close(self) -> None:
        await self._release(len(self.check.text), last=True)
        self._flush_held()

    async def _release_sentences(self) -> None:
        text = self.check.text
        end = None
        for i in range(self._scan, len(text) - 1):  # the last character waits for the one after it
            ch = text[i]
            if ch in _ENDS and not (ch == "." and not text[i + 1].isspace()):
                end = i + 1
                await self._release(end)
        self._scan = max(self._scan, len(text) - 1)

    async def _release(self, end: int, last: bool = False) -> None:
        start = self._released
        if end <= start:
            if last:
                self._flush_held()
            return
        original = self.check.text[start:end]
        checked = original
        if not self._broken:
            try:
                checked = await self.check.sentence(start, end)
            except Exception as e:  # fail open: the rest of the reply goes out as the agent wrote it
                self._broken = True
                self.check._skip("sentence check", e)
        self.report.sentences += 1
        edits = [(s + start, e + start, new) for s, e, new in edits_between(original, checked)]
        if edits:
            self.report.changed.append(self.report.sentences)
        self._released = end
        self._emit(end, edits, last)

    def _emit(self, end: int, edits: list[tuple[int, int, str]], last: bool) -> None:
        now = time.perf_counter()
        text = self.check.text
        while self._held:
            h = self._held[0]
            if h.start > end or (h.start == end and h.end > h.start):
                break  # behind text of a sentence not yet checked
            if h.end == h.start:  # a chunk with no text, held to keep the order
                self.writer(h.chunk)
            else:
                begin = max(h.start, h.sent if h.sent >= 0 else h.start)
                stop = min(h.end, end)
                whole = h.sent < 0 and stop == h.end
                piece = text[begin:stop] if not edits else piece_of(text, begin, stop, edits, last or stop == end)
                if whole and piece == text[begin:stop]:
                    self.writer(h.chunk)  # as the upstream sent it
                else:
                    if piece or (h.sent < 0 and len((h.chunk["choices"][0].get("delta") or {})) > 1):
                        self.writer(with_content(h.chunk, piece, rest=h.sent >= 0))
                if stop < h.end:
                    h.sent = stop
                    break
            self.report.held_ms = max(self.report.held_ms, (now - h.at) * 1000)
            self._held.pop(0)

    def _flush_held(self) -> None:
        now = time.perf_counter()
        for h in self._held:  # only chunks with no text are left once all text went out
            self.writer(h.chunk)
            self.report.held_ms = max(self.report.held_ms, (now - h.at) * 1000)
        self._held.clear()
