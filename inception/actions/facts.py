"""What the action checks read from a dialogue, gathered in one pass: the calls with their results,
the user's turns, the records the dialogue fetched and its "now"."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

import orjson

from inception.actions.records import Record, RecordExtractor, parse_time
from inception.dialogue import CallRecord, pair_calls
from policies.actions import ActionSettings
from policies.messages import DeveloperMessage, Message, SystemMessage, UserMessage, text_of

_UNSEEN = object()


def parse_args(arguments: str | None) -> dict[str, Any] | None:
    try:
        data = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class Facts:
    """The dialogue as the checks read it. Records and "now" are worked out on first use: most
    drafts are checked by built-ins that need neither."""

    def __init__(self, calls: list[CallRecord], user_texts: list[str], user_at: list[int], turn_start: int,
                 system: str, settings: ActionSettings, extractor: RecordExtractor, now_header: str | None):
        self.calls = calls                  # every call of the dialogue, paired with its result
        self.user_texts = user_texts
        self.user_at = user_at              # the index of each user turn in the dialogue
        self.turn_start = turn_start        # index of the last user message (0 when none)
        self.system = system
        self._settings, self._extractor, self._header = settings, extractor, now_header
        self._index: dict[str, dict[str, CallRecord]] = {}  # kind -> key -> the latest call whose result holds it
        self._now: tuple[datetime | None] | None = None
        self._seen: str | None = None
        self._parts: list[str] | None = None

    @property
    def last_user(self) -> str:
        return self.user_texts[-1] if self.user_texts else ""

    def record(self, kind: str, key: str) -> Record | None:
        """The latest record of this kind with this key the dialogue fetched, or None. Only the
        results of tools that hold such records are read, each once per check: the first lookup
        of a kind indexes its keys, newest result first, so the latest record of a key wins."""
        index = self._index.get(kind)
        if index is None:
            index = self._index[kind] = {}
            tools = self._extractor.tools_of.get(kind, ())
            for rec in reversed(self.calls):
                if rec.result is not None and rec.call.function.name in tools:
                    for k in self._extractor.extract(rec.call.function.name, rec.call.function.arguments or "{}",
                                                     rec.result).get(kind, ()):
                        index.setdefault(k, rec)
        rec = index.get(key)
        if rec is None:
            return None
        return self._extractor.record(rec.call.function.name, rec.call.function.arguments or "{}", rec.result or "",
                                      kind, key)

    @property
    def now(self) -> datetime | None:
        if self._now is None:
            self._now = (_now(self._settings, self, self._header),)
        return self._now[0]

    def shows(self, value: str) -> bool:
        """Whether the user said ``value`` or a tool returned it (case aside): where an id the
        agent sends must come from. Verbatim first: lower-casing every result costs more."""
        if self._parts is None:
            self._parts = [*self.user_texts, *(c.result for c in self.calls if c.result)]
        parts = self._parts
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
    return Facts(calls, users, user_at, turn_start, "\n".join(system), settings, extractor, now_header)


def _now(settings: ActionSettings, facts: Facts, header: str | None) -> datetime | None:
    for src in settings.now:
        found: datetime | None = None
        if src.header is not None:
            found = parse_time(header) if header else None
        elif src.system_prompt is not None:
            found = _prompt_time_of(src.system_prompt, facts.system)
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


class _TextMemo:
    """What a function gives for a text, remembered by the text itself: a dict lookup, where the
    function (a search of the whole system prompt) would run again for every draft of the
    dialogue. Emptied once its keys pass ``max_chars``."""

    def __init__(self, fn: Callable[..., Any], max_chars: int = 4_000_000):
        self.fn, self.max_chars = fn, max_chars
        self._memo: dict[tuple[str, ...], Any] = {}
        self._chars = 0

    def __call__(self, *texts: str) -> Any:
        found = self._memo.get(texts, _UNSEEN)
        if found is _UNSEEN:
            size = sum(map(len, texts))
            if self._chars + size > self.max_chars:
                self._memo.clear()
                self._chars = 0
            found = self._memo[texts] = self.fn(*texts)
            self._chars += size
        return found


def _prompt_time(pattern: str, system: str) -> datetime | None:
    m = re.search(pattern, system)
    return parse_time(m.group(1) if m and m.groups() else (m.group(0) if m else None))


_prompt_time_of = _TextMemo(_prompt_time)
