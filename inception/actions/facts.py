"""What the action checks read from a dialogue, gathered in one pass: the calls with their results,
the user's turns, the records the dialogue fetched and its "now"."""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Callable

import orjson

from inception.actions.records import Record, RecordExtractor, parse_time, read_data
from inception.actions.dialogue_state import State, States
from inception.tool_results import failure_in
from policies.actions import ActionSettings
from policies.untrusted import remembered_spans
from policies.messages import Message

_UNSEEN = object()


def parse_args(arguments: str | None) -> dict[str, Any] | None:
    try:
        data = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class Facts:
    """The dialogue as the checks read it (a ``State`` seen by one checker, less rein's own calls).
    Records and "now" are worked out on first use: most drafts are checked by built-ins that need
    neither. The same content gives the same ``Facts`` (``of``), so what one check works out here
    serves the next check of that dialogue."""

    def __init__(self, state: State, owned: frozenset[str], settings: ActionSettings, extractor: RecordExtractor,
                 now_header: str | None):
        self.state, self.owned = state, owned
        # every call of the dialogue, paired with its result (never changed: shared by the checks)
        self.calls = state.calls if not owned else [c for c in state.calls if c.name not in owned]
        self.user_texts = state.users
        self.user_at = state.user_at        # the index of each user turn in the dialogue
        self.turn_start = state.turn_start  # index of the last user message (0 when none)
        self.system = "\n".join(state.system)
        self._settings, self._extractor, self._header = settings, extractor, now_header
        self._now: tuple[datetime | None] | None = None
        self._seen: str | None = None
        self._parts: list[str] | None = None
        self._joined: str | None = None  # the parts joined (read ahead: ``read_shown``)
        self._lowered: tuple[str, tuple[str, ...]] | None = None
        self._records: dict[tuple[str, str], Record | None] = {}  # record(kind, key), as found
        self.memo: dict[Any, Any] = {}  # what checks work out from these facts (by what they were given)

    @classmethod
    def of(cls, state: State, owned: frozenset[str], settings: ActionSettings, extractor: RecordExtractor,
           now_header: str | None) -> "Facts":
        key = ("facts", owned, now_header)
        found = state.memo.get(key)
        if found is None:
            found = state.memo[key] = cls(state, owned, settings, extractor, now_header)
        return found

    @property
    def last_user(self) -> str:
        return self.user_texts[-1] if self.user_texts else ""

    def record(self, kind: str, key: str) -> Record | None:
        """The latest record of this kind with this key the dialogue fetched, or None. Only the
        results of tools that hold such records are read: the first lookup of a kind indexes its
        keys (the latest call whose result holds a key wins), extending the index of the dialogue
        this one continues when it has one, so a long dialogue's results are indexed once."""
        found = self._records.get((kind, key), _UNSEEN)
        if found is not _UNSEEN:
            return found
        at = self._index(kind).get(key)
        if at is None:
            found = None
        else:
            rec = self.state.calls[at]
            found = self._extractor.record(rec.call.function.name, rec.call.function.arguments or "{}", rec.result or "",
                                           kind, key)
        self._records[(kind, key)] = found  # the same record object for every check of these facts
        return found

    def _index(self, kind: str) -> dict[str, int]:
        memo_key = ("index", self.owned, kind)
        index = self.state.memo.get(memo_key)
        if index is not None:
            return index
        base, changed = self._since(memo_key)
        index = dict(base) if base is not None else {}
        calls, tools = self.state.calls, self._extractor.tools_of.get(kind, ())
        for p in changed:
            rec = calls[p]
            name = rec.call.function.name
            if rec.result is not None and name in tools and name not in self.owned:
                for k in self._extractor.extract(name, rec.call.function.arguments or "{}", rec.result).get(kind, ()):
                    if index.get(k, -1) < p:
                        index[k] = p
        self.state.memo[memo_key] = index
        return index

    def latest(self, kind: str) -> str | None:
        """The key of the record of this kind the dialogue fetched last (None when none)."""
        index = self._index(kind)
        return max(index, key=index.__getitem__) if index else None

    def recent(self, kind: str, most: int) -> list[str]:
        """The keys of the ``most`` records of this kind the dialogue fetched last, the latest first."""
        index = self._index(kind)
        return sorted(index, key=index.__getitem__, reverse=True)[:most]

    def type_records(self, kind: str) -> None:
        """Every record of this kind the dialogue fetched (the latest of each key) typed, before a
        call names one (``ActionChecker.prepare``): a bind then finds its record here, not through the
        extraction cache (a list bind looks up several). Only the results added or answered since
        the nearest state that did this are read; the records of that state's are taken from it."""
        memo_key = ("typed", self.owned, kind)
        typed = self.state.memo.get(memo_key)
        if typed is None:
            base, changed = self._since(memo_key)
            fresh = set(changed) if base is not None else None
            typed = {}
            for key, at in self._index(kind).items():
                kept = base.get(key, _UNSEEN) if fresh is not None and at not in fresh else _UNSEEN
                typed[key] = self.record(kind, key) if kept is _UNSEEN else kept
            self.state.memo[memo_key] = typed
        records = self._records
        for key, record in typed.items():
            records.setdefault((kind, key), record)

    def carries_instructions(self) -> bool:
        """Whether a result of the dialogue holds a passage of instructions (the spans
        ``injection.flagged`` reads, kept by the text: ``policies.untrusted.remembered_spans``):
        only then can a write send a value that only such a passage gave (``untrusted_argument``).
        Each result is read once, the dialogue this one continues having read the ones before."""
        memo_key = ("flagged", self.owned)
        found = self.state.memo.get(memo_key)
        if found is None:
            base, changed = self._since(memo_key)
            calls = self.state.calls
            # newest first: a passage of instructions is most often in the latest results, and the
            # first one found settles it
            found = bool(base) or any(calls[p].result and calls[p].name not in self.owned
                                      and remembered_spans(calls[p].result) for p in reversed(changed))
            self.state.memo[memo_key] = found
        return found

    def _since(self, memo_key: Any) -> tuple[Any, list[int] | range]:
        """What the nearest state before this one worked out under ``memo_key`` (None when none
        did), and the positions of the calls to read on top of it: all of them when there is
        nothing to extend, else the calls added or answered since, in order."""
        state = self.state
        before = state.parent
        while before is not None and memo_key not in before.memo:
            before = before.parent
        if before is None:
            return None, range(len(state.calls))
        answered = {p for ps in before.open.values() for p in ps if state.calls[p] is not before.calls[p]}
        return before.memo[memo_key], [*sorted(answered), *range(len(before.calls), len(state.calls))]

    @property
    def now(self) -> datetime | None:
        if self._now is None:
            self._now = (_now(self._settings, self, self._header),)
        return self._now[0]

    @property
    def lowered(self) -> tuple[str, tuple[str, ...]]:
        """The last user turn and every user turn, lower-cased (what rules read as last_user, user_turns)."""
        if self._lowered is None:
            turns = tuple(t.lower() for t in self.user_texts)
            self._lowered = (turns[-1] if turns else "", turns)
        return self._lowered

    def read_shown(self) -> None:
        """What ``shows`` searches, gathered (and lower-cased) before a call asks."""
        if self._parts is None:
            self._parts = self._sources()
        if self._joined is None:
            self._joined = "\n".join(self._parts)
        if self._seen is None:
            self._seen = self._joined.lower()

    def shows(self, value: str) -> bool:
        """Whether the user said ``value``, the operator's system prompt holds it (a deployment
        that names the signed-in user's account there) or a tool returned it (case aside): where an
        id the agent sends must come from. Verbatim first: lower-casing every result costs more."""
        if self._parts is None:
            self._parts = self._sources()
        parts = self._parts
        if self._joined is not None and "\n" not in value:
            # in the parts joined by a line break, a value with none is found only inside one part
            if value in self._joined:
                return True
        elif any(value in p for p in parts):
            return True
        if self._seen is None:
            self._seen = "\n".join(parts).lower()
        return value.lower() in self._seen

    def _sources(self) -> list[str]:
        # the system prompt last: an id is most often in a turn or a result, and a search that
        # finds it there does not first read the whole prompt (the answer does not depend on the order)
        return [*self.user_texts, *(c.result for c in self.calls if c.result), *([self.system] if self.system else [])]


def gather(messages: list[Message], settings: ActionSettings, extractor: RecordExtractor,
           now_header: str | None = None, owned: set[str] | frozenset[str] = frozenset()) -> Facts:
    """The facts of ``messages`` read afresh (a checker keeps its states: ``ActionChecker``).
    ``owned``: rein's own tools (think ...): their calls and results are rein's words, not the
    dialogue's (a plan that quotes an id must not make that id "seen")."""
    return Facts(States().of(messages), frozenset(owned), settings, extractor, now_header)


def _now(settings: ActionSettings, facts: Facts, header: str | None) -> datetime | None:
    for src in settings.now:
        found: datetime | None = None
        if src.header is not None:
            found = parse_time(header) if header else None
        elif src.system_prompt is not None:
            found = _prompt_time_of(src.system_prompt, facts.system)
        elif src.tool is not None:
            for rec in reversed(facts.calls):
                if rec.name == src.tool and rec.result is not None and not failure_in(rec.result):
                    found = parse_time(_time_in(rec.result, src.field))
                    if found is not None:
                        break
        elif src.value is not None:
            found = parse_time(src.value)
        if found is not None:
            return found
    return None


def _time_in(result: str, field: str | None) -> Any:
    """The field of a JSON or YAML result; with no field, a bare short result ("2024-05-15"): a
    longer one is a record whose dates are not the time."""
    if field:
        data = read_data(result)
        return data.get(field) if isinstance(data, dict) else None
    bare = result.strip().strip("'\"")
    return bare if len(bare) <= 64 else None


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
