"""What the action checks read from a dialogue, gathered in one pass: the calls with their results,
the user's turns, the records the dialogue fetched and its "now"."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from inception.actions.records import Record, RecordExtractor, parse_time
from inception.dialogue import CallRecord, pair_calls
from policies.actions import ActionSettings
from policies.messages import DeveloperMessage, Message, SystemMessage, UserMessage, text_of


def parse_args(arguments: str | None) -> dict[str, Any] | None:
    try:
        data = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


@dataclass
class Facts:
    calls: list[CallRecord]                 # every call of the dialogue, paired with its result
    user_texts: list[str]
    user_at: list[int]                      # the index of each user turn in the dialogue
    turn_start: int                         # index of the last user message (0 when none)
    system: str
    records: dict[str, dict[str, Record]]   # kind -> key -> the latest record with that key
    now: datetime | None
    _seen: str | None = field(default=None, repr=False)

    @property
    def last_user(self) -> str:
        return self.user_texts[-1] if self.user_texts else ""

    def shows(self, value: str) -> bool:
        """Whether the user said ``value`` or a tool returned it (case aside): where an id the
        agent sends must come from. Verbatim first: lower-casing every result costs more."""
        parts = [*self.user_texts, *(c.result or "" for c in self.calls)]
        if any(value in p for p in parts):
            return True
        if self._seen is None:
            self._seen = "\n".join(parts).lower()
        return value.lower() in self._seen


def gather(messages: list[Message], settings: ActionSettings, extractor: RecordExtractor,
           now_header: str | None = None, owned: set[str] | frozenset[str] = frozenset()) -> Facts:
    """``owned``: rein's own tools (think ...): their calls and results are rein's words, not the
    dialogue's (a plan that quotes an id must not make that id "seen")."""
    users: list[str] = []
    user_at: list[int] = []
    system: list[str] = []
    turn_start = 0
    for i, m in enumerate(messages):
        if isinstance(m, UserMessage):
            users.append(text_of(m))
            user_at.append(i)
            turn_start = i
        elif isinstance(m, (SystemMessage, DeveloperMessage)):
            system.append(text_of(m))
    calls = pair_calls(messages)
    if owned:
        calls = [c for c in calls if c.name not in owned]
    records: dict[str, dict[str, Record]] = {}
    if extractor.sources:
        for rec in calls:
            if rec.result is None or rec.name not in extractor.sources:
                continue
            for kind, key, record in extractor.extract(rec.name, rec.call.function.arguments or "{}", rec.result):
                records.setdefault(kind, {})[key] = record
    facts = Facts(calls, users, user_at, turn_start, "\n".join(system), records, None)
    facts.now = _now(settings, facts, now_header)
    return facts


def _now(settings: ActionSettings, facts: Facts, header: str | None) -> datetime | None:
    for src in settings.now:
        found: datetime | None = None
        if src.header is not None:
            found = parse_time(header) if header else None
        elif src.system_prompt is not None:
            m = re.search(src.system_prompt, facts.system)
            found = parse_time(m.group(1) if m and m.groups() else (m.group(0) if m else None))
        elif src.tool is not None:
            for rec in reversed(facts.calls):
                if rec.name == src.tool and rec.result is not None:
                    data = parse_args(rec.result)
                    found = parse_time((data or {}).get(src.field or ""))
                    if found is not None:
                        break
        elif src.value is not None:
            found = parse_time(src.value)
        if found is not None:
            return found
    return None
