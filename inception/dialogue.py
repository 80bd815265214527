"""A read-only view of one request, computed once and shared by every structural detector.

The *current turn* starts at the last user message: what happened before it was already
answered, so detectors look at the current turn only (a failure three turns ago is old news).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from policies.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage, text_of


@dataclass
class CallRecord:
    call: ToolCall
    result: str | None      # the tool message's text; None while pending (a draft) or never answered
    index: int              # position of the assistant message that made the call

    @property
    def name(self) -> str:
        return self.call.function.name

    @property
    def key(self) -> tuple[str, str]:
        """Name and canonical arguments: equal keys are the same call."""
        return self.name, _canonical(self.call.function.arguments or "{}")

    def show(self) -> str:
        return f"{self.name}({self.call.function.arguments or ''})"


@lru_cache(maxsize=4096)
def _canonical(raw: str) -> str:
    # (a tool loop compares the same calls' arguments every request: each text parsed once)
    try:
        return json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
    except ValueError:
        return raw.strip()


def pair_calls(messages: list[Message], start: int = 0) -> list[CallRecord]:
    """Every tool call from ``messages[start:]`` in order, each with the result that answers it.

    Real agents reuse ``tool_call_id``s inside one dialogue (a later call may carry the id of an
    earlier one), so a map from id to result pairs the wrong result. A tool message answers the
    nearest preceding *unanswered* call with its id; when no unanswered call has that id (an empty,
    unknown or stale id), it answers by position: the first unanswered call of the latest
    assistant step. One pass, linear in the number of messages and calls.
    """
    calls: list[CallRecord] = []
    open_by_id: dict[str, list[CallRecord]] = {}
    step: list[CallRecord] = []          # the calls of the latest assistant message that made any
    for i in range(start, len(messages)):
        m = messages[i]
        if isinstance(m, AssistantMessage) and m.tool_calls:
            step = [CallRecord(c, None, i) for c in m.tool_calls]
            calls += step
            for rec in step:
                open_by_id.setdefault(rec.call.id, []).append(rec)
        elif isinstance(m, ToolMessage):
            rec = _open_with_id(open_by_id.get(m.tool_call_id))
            if rec is None:
                rec = next((r for r in step if r.result is None), None)
            if rec is not None:  # else a result with no call left to answer: nothing to pair
                rec.result = text_of(m)
    return calls


def _open_with_id(recs: list[CallRecord] | None) -> CallRecord | None:
    # The latest step holding an unanswered call with this id; inside that step, its first such
    # call (results follow their calls in order). Answered calls are dropped as they are met.
    while recs and recs[-1].result is not None:
        recs.pop()
    if not recs:
        return None
    j = len(recs) - 1
    while j > 0 and recs[j - 1].index == recs[j].index and recs[j - 1].result is None:
        j -= 1
    return recs.pop(j)


def clip(text: str, n: int = 160) -> str:
    """``text`` with its blanks collapsed, cut to ``n`` characters ("…" last). A long text's first
    words decide it: only its head is split (a 20 KB tool result clipped every request costs as much
    as a short one)."""
    if len(text) > 4 * n + 16:
        head = " ".join(text[: 4 * n].split()[:-1])  # (the head's last word may be cut: left out)
        if len(head) >= n:
            return head[: n - 1] + "…"
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def content_key(messages: list[Message]) -> bytes:
    """A digest of what ``messages`` say: each one's kind, text and calls (name, arguments). Equal for
    a prefix the client sends again, whatever objects carry it (the proxy builds new ones per request)."""
    rows = []
    for m in messages:
        row = [type(m).__name__, text_of(m)]
        if isinstance(m, AssistantMessage) and m.tool_calls:
            for c in m.tool_calls:
                row += (c.function.name, c.function.arguments or "")
        rows.append(row)
    try:
        data = orjson.dumps(rows)
    except TypeError:  # a lone surrogate in a text: no UTF-8 for orjson, a slower dump that takes it
        data = json.dumps(rows).encode()
    return hashlib.blake2b(data, digest_size=16).digest()


@dataclass
class Dialogue:
    messages: list[Message]
    tools: dict[str, dict[str, Any]]        # name -> function spec, as the client defined them
    owned: set[str] = field(default_factory=set)  # rein-owned tool names (never "unknown")
    turn_start: int = 0
    last_user: str = ""
    calls: list[CallRecord] = field(default_factory=list)
    _turn_key: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def turn_key(self) -> bytes:
        """``content_key`` of the dialogue up to the current turn's user message (worked out once)."""
        if self._turn_key is None:
            self._turn_key = content_key(self.messages[:self.turn_start + 1])
        return self._turn_key

    @classmethod
    def of(cls, messages: list[Message], tools: list[dict[str, Any]] | None,
           owned: set[str] | None = None) -> "Dialogue":
        specs = {}
        for t in tools or []:
            fn = t.get("function") if isinstance(t, dict) else None
            if isinstance(fn, dict) and isinstance(fn.get("name"), str):
                specs[fn["name"]] = fn if isinstance(fn.get("parameters", {}), dict) else {**fn, "parameters": {}}
        start = 0
        for i in range(len(messages) - 1, -1, -1):
            if isinstance(messages[i], UserMessage):
                start = i
                break
        last_user = text_of(messages[start]) if messages and isinstance(messages[start], UserMessage) else ""
        return cls(messages, specs, owned or set(), start, last_user, pair_calls(messages, start))

    def latest_calls(self) -> list[CallRecord]:
        """The calls of the last assistant message in the current turn (a draft, or the latest step)."""
        if not self.calls:
            return []
        last = self.calls[-1].index
        return [c for c in self.calls if c.index == last]

    def context_before_turn(self) -> list[Message]:
        return self.messages[:self.turn_start]
