"""The lookups factuality and coherence make over facts, built once per message and joined per
dialogue: which records a fact is about, and which values were seen where (``Evidence`` asks)."""
from __future__ import annotations

from itertools import chain
from typing import Any, Callable, Iterable, Iterator

from refiners.facts import Fact, Row


class Index:
    """The lookups factuality needs over some facts. Built once per message and cached (see
    ``refiners.message_facts``): a dialogue's evidence joins its messages' indexes, set unions in C."""

    __slots__ = ("facts", "by_entity", "ids", "numbers", "money", "seen", "days", "outside", "said",
                 "tool_ids", "tool_turns", "assistant_ids", "assistant_keyed", "names", "tool_names", "rows")

    def __init__(self, facts: list[Fact], ids: Iterable[str] = (), rows: dict[tuple[int, int], Row] | None = None):
        self.facts = facts
        self.rows: dict[tuple[int, int], Row] = rows or _NO_ROWS  # (turn, row) -> what else the record says
        # Every lookup starts as one shared empty container and gets its own only when a fact fills
        # it: most messages (a greeting, a call without arguments) fill none, and the twenty-odd
        # containers an index would otherwise hold are what a young collection walks (an index is
        # kept in the message cache and outlives the turn).
        self.by_entity: dict[str, list[Fact]] | JoinedEntities = _NO_ENTITIES
        self.ids: set[str] | frozenset[str] = set(ids) or _NONE  # identifiers seen anywhere
        self.numbers = self.money = self.days = _NONE  # amounts and counts; amounts (operands); dates
        self.seen: dict[str, set[Any]] = _SEEN           # time, status, name values
        self.outside: dict[str, set[Any]] = _OUTSIDE     # values from anyone but the assistant
        self.said: dict[str, set[Any]] = _SAID           # values from anyone but tools
        self.tool_ids = self.assistant_ids = self.names = self.tool_names = _NONE
        self.tool_turns: set[int] | frozenset[int] = _NONE  # which messages hold tool facts
        self.assistant_keyed: list[Fact] = _NO_FACTS     # assistant facts tied to a record (coherence)
        if facts:
            self._fill(facts)

    def iter_facts(self) -> Iterator[Fact]:
        return iter(self.facts)

    def _fill(self, facts: list[Fact]) -> None:
        """The lookups of ``facts``, in one pass into fresh containers."""
        by_entity: dict[str, list[Fact]] = {}
        ids, numbers, money, days = set(self.ids), set(), set(), set()
        seen: dict[str, set[Any]] = {"time": set(), "status": set(), "name": set()}
        outside: dict[str, set[Any]] = {}
        said: dict[str, set[Any]] = {"number": set(), "date": set(), "time": set()}
        tool_ids, tool_turns, assistant_ids, names, tool_names = set(), set(), set(), set(), set()
        keyed: list[Fact] = []
        for f in facts:
            kind, value, source = f.kind, f.value, f.source
            from_tool = source in ("tool", "document")
            if from_tool:
                tool_turns.add(f.turn)
                for e in f.entities:
                    by_entity.setdefault(e, []).append(f)
            elif source == "assistant" and f.entities:
                keyed.append(f)
            bucket = kind
            if kind == "id":
                ids.add(value)
                if from_tool:
                    tool_ids.add(value)
                elif source == "assistant":
                    assistant_ids.add(value)
            elif kind in ("money", "number"):
                bucket = "number"
                numbers.add(value)
                if kind == "money" and value:
                    money.add(value)
            elif kind == "date":
                days.add(value)
                days.add(value[1:])
            elif kind in seen:
                seen[kind].add(value)
                if kind == "name":
                    names.add(f.display)
                    if from_tool:
                        tool_names.add(f.display)
            if source != "assistant" and kind != "name":
                out = outside.setdefault(bucket, set())
                out.add(value)
                if kind == "date":
                    out.add(value[1:])
            # A tool's whole result that is one bare value (a calculator's "3223.36") is a figure the
            # agent worked out: as its own words, never "corrected" to another fact.
            if (source != "tool" or not f.name and not f.key) and bucket in said:
                said[bucket].add(value)
                if kind == "date":
                    said["date"].add(value[1:])
        self.by_entity = by_entity or _NO_ENTITIES
        self.ids, self.numbers, self.money, self.days = ids or _NONE, numbers or _NONE, money or _NONE, days or _NONE
        self.tool_ids, self.tool_turns, self.assistant_ids = tool_ids or _NONE, tool_turns or _NONE, assistant_ids or _NONE
        self.names, self.tool_names = names or _NONE, tool_names or _NONE
        self.seen = seen if any(seen.values()) else _SEEN
        self.outside = outside or _OUTSIDE
        self.said = said if any(said.values()) else _SAID
        self.assistant_keyed = keyed or _NO_FACTS


# The shared empty lookups of an index with nothing in them: read, never written (``join`` and
# ``_fill`` make new containers).
_NONE: frozenset[Any] = frozenset()
_NO_ROWS: dict[tuple[int, int], Row] = {}
_NO_ENTITIES: dict[str, list[Fact]] = {}
_NO_FACTS: list[Fact] = []
_SEEN: dict[str, Any] = {"time": _NONE, "status": _NONE, "name": _NONE}
_OUTSIDE: dict[str, Any] = {}
_SAID: dict[str, Any] = {"number": _NONE, "date": _NONE, "time": _NONE}


EMPTY = Index([])  # shared by every message that holds nothing: read, never written


def join(parts: list[Index]) -> Index:
    if len(parts) == 1:
        return parts[0]
    # Most messages give no fact (a greeting, a call without arguments): an empty index adds nothing.
    return JoinedIndex([p for p in parts if (p._parts if isinstance(p, JoinedIndex) else p.facts or p.ids or p.rows)])


def _union(name: str) -> Callable[[list[Index]], Any]:
    return lambda parts: set().union(*(getattr(p, name) for p in parts))


def _merged(name: str, empty: dict[str, Any]) -> Callable[[list[Index]], Any]:
    def build(parts: list[Index]) -> dict[str, Any]:
        merged: dict[str, set[Any]] = {}
        for p in parts:
            for k, v in getattr(p, name).items():
                merged.setdefault(k, set()).update(v)
        return {**empty, **merged}
    return build


# How each lookup of a joined index is made from its parts' (in their order: later rows win).
_JOINS: dict[str, Callable[[list[Index]], Any]] = {
    "facts": lambda parts: list(chain.from_iterable(p.facts for p in parts)),
    "by_entity": lambda parts: JoinedEntities([p.by_entity for p in parts if p.by_entity]),
    "assistant_keyed": lambda parts: list(chain.from_iterable(p.assistant_keyed for p in parts)),
    "rows": lambda parts: {k: v for p in parts for k, v in p.rows.items()},
    **{name: _union(name) for name in ("ids", "numbers", "money", "days", "tool_ids", "tool_turns", "assistant_ids",
                                       "names", "tool_names")},
    "seen": _merged("seen", _SEEN), "outside": _merged("outside", _OUTSIDE), "said": _merged("said", _SAID),
}


class JoinedIndex(Index):
    """The index of a dialogue's messages, each lookup joined from theirs when first read: a check
    reads a few of them (said values, record ids), rarely every fact or every amount, and what is
    not built is neither paid for nor held (a young collection walks what the turn holds)."""

    def __init__(self, parts: list[Index]):  # noqa: super().__init__ not called: nothing is built yet
        self._parts = parts

    def __getattr__(self, name: str) -> Any:  # only for a lookup not built yet
        build = _JOINS.get(name)
        if build is None:
            raise AttributeError(name)
        value = build(self._parts)
        setattr(self, name, value)
        return value

    def iter_facts(self) -> Iterator[Fact]:
        try:
            return iter(_FACTS.__get__(self))  # the list, once built
        except AttributeError:
            return chain.from_iterable(p.iter_facts() for p in self._parts)


_FACTS = Index.__dict__["facts"]  # the slot itself: reading it builds nothing


class JoinedEntities:
    """``by_entity`` of joined indexes: which records there are is known at once (a set union), a
    record's facts (in the parts' order) are gathered when first asked for. A check asks about a
    few records; a dialogue holds hundreds (every flight of a search)."""

    __slots__ = ("_parts", "_keys", "_facts")

    def __init__(self, parts: list[Any]):
        self._parts = parts
        self._keys: set[str] = set().union(*parts)
        self._facts: dict[str, list[Fact]] = {}

    @property
    def keys_set(self) -> set[str]:
        """The records' ids, as a set (a lookup without a call)."""
        return self._keys

    def __contains__(self, entity: object) -> bool:
        return entity in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def get(self, entity: str, default: Any = None) -> Any:
        found = self._facts.get(entity)
        if found is None:
            if entity not in self._keys:
                return default
            found = self._facts[entity] = [f for part in self._parts for f in part.get(entity, ())]
        return found

    def items(self) -> Iterator[tuple[str, list[Fact]]]:
        return ((entity, self.get(entity)) for entity in self._keys)
