"""A stream's text released sentence by sentence, each once it has passed the checks.

The upstream's chunks are held only until the sentence they carry is complete (its end mark and the
character after it seen, so "3.5" is not a full stop) and checked; then they go out as the upstream
sent them — its ids, fields and chunking — with a changed value in the chunk it came in. A chunk that
carries the end of one sentence and the start of the next is split in two, both in its shape.
Tool-call chunks are never held: text before them is checked and released first. rein adds at most
one sentence of delay, and no sentence leaves unchecked — up to the check's size limit
(``SentenceCheck.max_chars``): past it, the rest of the reply goes out as the agent wrote it, chunks
as they come, and the trailer says from which sentence (``x-rein-unchecked-from``). The work per
chunk is bounded and the whole stream's is linear in its text: no chunk rescans the reply so far.

    release = SentenceRelease(check, writer)
    for c in upstream_chunks: await release.add(c)
    await release.close()       # the rest of the text, checked; release.report says what happened
"""
from __future__ import annotations

import time
from collections import deque
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
    unchecked_from: int | None = None  # past the size limit: this sentence and the rest went out unchecked

    def fields(self) -> dict[str, str]:
        out = {"x-rein-held": self.held, "x-rein-held-ms": f"{self.held_ms:.1f}"}
        if self.held == "sentences":
            out["x-rein-sentences"] = str(self.sentences)
            out["x-rein-changed-sentences"] = ",".join(map(str, self.changed)) or "none"
            if self.unchecked_from is not None:
                out["x-rein-unchecked-from"] = str(self.unchecked_from)
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
        self._held: deque[_Held] = deque()
        self._released = 0   # the reply's text up to here went out
        self._length = 0     # the reply's text so far (the check joins it only when it reads it)
        self._last = ""      # the last character seen, not yet judged: it waits for the one after it
        self._unchecked = False  # past the size limit, or the check raised: text goes out as it comes

    async def add(self, c: dict[str, Any]) -> None:
        content = content_of(c)
        if self._unchecked:
            self.writer(c)
            return
        if content:
            at = self._length
            self.check.extend(content)
            self._length += len(content)
            self._held.append(_Held(c, at, self._length, time.perf_counter()))
            await self._release_sentences(at, content)
            if self._length > self.check.max_chars and not self._unchecked:
                self._stop_checking()
            return
        calls = any((ch.get("delta") or {}).get("tool_calls") for ch in c.get("choices") or [])
        if calls or any(ch.get("finish_reason") for ch in c.get("choices") or []):
            await self._release(self._length, last=True)  # the text before it is complete
        if self._held:  # behind text still being checked: keep the order
            self._held.append(_Held(c, self._length, self._length, time.perf_counter()))
        else:
            self.writer(c)

    async def close(self) -> None:
        if not self._unchecked:
            await self._release(self._length, last=True)
        self._flush_held()

    async def _release_sentences(self, at: int, content: str) -> None:
        """Release each sentence that ``content`` (the text from offset ``at``) completes. Only the new
        text is read, with the character before it, which waited for this one."""
        seen = self._last + content
        base = at - len(self._last)
        for i in range(len(seen) - 1):
            ch = seen[i]
            if ch in _ENDS and not (ch == "." and not seen[i + 1].isspace()):
                if base + i + 1 > self.check.max_chars:
                    break  # a sentence that ends past the limit is not checked: _stop_checking below
                await self._release(base + i + 1)
                if self._unchecked:
                    return
        self._last = seen[-1]

    def _stop_checking(self) -> None:
        """Past the size limit, or after the check raised: what is held goes out as the agent wrote it,
        and so does the rest of the reply (the check's notes say why); the trailer says from which sentence."""
        self._unchecked = True
        self.report.unchecked_from = self.report.sentences + 1
        if self._released < self._length:
            self._emit(self._length, [], last=True)
            self._released = self._length

    async def _release(self, end: int, last: bool = False) -> None:
        start = self._released
        if end <= start:
            if last:
                self._flush_held()
            return
        original = self.check.text[start:end]
        try:
            checked = await self.check.sentence(start, end)
        except Exception as e:  # fail open: this sentence and the rest go out as the agent wrote them
            self.check._skip("sentence check", e)
            self._stop_checking()
            return
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
            self._held.popleft()

    def _flush_held(self) -> None:
        now = time.perf_counter()
        for h in self._held:  # only chunks with no text are left once all text went out
            self.writer(h.chunk)
            self.report.held_ms = max(self.report.held_ms, (now - h.at) * 1000)
        self._held.clear()
