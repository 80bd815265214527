"""A read-only view of one request, computed once and shared by every structural detector.

The *current turn* starts at the last user message: what happened before it was already
answered, so detectors look at the current turn only (a failure three turns ago is old news).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from policies.messages import AssistantMessage, Message, ToolCall, ToolMessage, UserMessage, text_of


@dataclass
class CallRecord:
    call: ToolCall
    result: str | None      # the tool message's text; None while the call is a pending draft
    index: int              # position of the assistant message that made the call

    @property
    def name(self) -> str:
        return self.call.function.name

    @property
    def key(self) -> tuple[str, str]:
        """Name and canonical arguments: equal keys are the same call."""
        raw = self.call.function.arguments or "{}"
        try:
            return self.name, json.dumps(json.loads(raw), sort_keys=True, separators=(",", ":"))
        except ValueError:
            return self.name, raw.strip()

    def show(self) -> str:
        return f"{self.name}({self.call.function.arguments or ''})"


@dataclass
class Dialogue:
    messages: list[Message]
    tools: dict[str, dict[str, Any]]        # name -> function spec, as the client defined them
    owned: set[str] = field(default_factory=set)  # rein-owned tool names (never "unknown")
    turn_start: int = 0
    last_user: str = ""
    calls: list[CallRecord] = field(default_factory=list)

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
        results = {m.tool_call_id: text_of(m) for m in messages[start:] if isinstance(m, ToolMessage)}
        calls = [CallRecord(c, results.get(c.id), i)
                 for i, m in enumerate(messages[start:], start)
                 if isinstance(m, AssistantMessage) and m.tool_calls for c in m.tool_calls]
        last_user = text_of(messages[start]) if messages and isinstance(messages[start], UserMessage) else ""
        return cls(messages, specs, owned or set(), start, last_user, calls)

    def latest_calls(self) -> list[CallRecord]:
        """The calls of the last assistant message in the current turn (a draft, or the latest step)."""
        if not self.calls:
            return []
        last = self.calls[-1].index
        return [c for c in self.calls if c.index == last]

    def context_before_turn(self) -> list[Message]:
        return self.messages[:self.turn_start]
