"""The lookups factuality and coherence make over facts, built once per message and joined per
dialogue: which records a fact is about, and which values were seen where (``Evidence`` asks)."""
from __future__ import annotations

from itertools import chain
from typing import Any, Iterable, Iterator

from refiners.facts import Fact, Row


class Index:
    """The lookups factuality needs over some facts. Built once per message and cached (see
    ``refiners.message_facts``): a dialogue's evidence joins its messages' indexes, set unions in C."""

    __slots__ = ("facts", "by_entity", "ids", "numbers", "money", "seen", "days", "outside", "said",
                 "tool_ids", "tool_turns", "assistant_ids", "assistant_keyed", "names", "tool_names", "rows")

    def __init__(self, facts: list[Fact], ids: Iterable[str] = (), rows: dict[tuple[int, int], Row] | None = None):
        self.facts = facts
        self.rows: dict[tuple[int, int], Row] = rows or {}  # (turn, row) -> what else the record says
        self.by_entity: dict[str, list[Fact]] | JoinedEntities = {}
        self.ids: set[str] = set(ids)       # identifiers seen anywhere (tools, documents, user, assistant)
        self.numbers: set[Any] = set()      # every amount and count seen
        self.money: set[Any] = set()        # amounts, the operands of "follows by arithmetic"
        self.seen: dict[str, set[Any]] = {"time": set(), "status": set(), "name": set()}
        self.days: set[Any] = set()         # dates, with and without their year
        self.outside: dict[str, set[Any]] = {}  # values from anyone but the assistant
        self.said: dict[str, set[Any]] = {"number": set(), "date": set(), "time": set()}  # anyone but tools
        self.tool_ids: set[str] = set()     # ids in tool results and documents
        self.tool_turns: set[int] = set()   # which messages hold tool facts
        self.assistant_ids: set[str] = set()
        self.assistant_keyed: list[Fact] = []  # assistant facts tied to a record (coherence)
        self.names: set[str] = set()        # every name seen
        self.tool_names: set[str] = set()   # names in tool results and documents
        for f in facts:
            self._add(f)

    def _add(self, f: Fact) -> None:
        kind, value, source = f.kind, f.value, f.source
        from_tool = source in ("tool", "document")
        if from_tool:
            self.tool_turns.add(f.turn)
            for e in f.entities:
                self.by_entity.setdefault(e, []).append(f)
        elif source == "assistant" and f.entities:
            self.assistant_keyed.append(f)
        bucket = kind
        if kind == "id":
            self.ids.add(value)
            if from_tool:
                self.tool_ids.add(value)
            elif source == "assistant":
                self.assistant_ids.add(value)
        elif kind in ("money", "number"):
            bucket = "number"
            self.numbers.add(value)
            if kind == "money" and value:
                self.money.add(value)
        elif kind == "date":
            self.days.add(value)
            self.days.add(value[1:])
        elif kind in self.seen:
            self.seen[kind].add(value)
            if kind == "name":
                self.names.add(f.display)
                if from_tool:
                    self.tool_names.add(f.display)
        if source != "assistant" and kind != "name":
            out = self.outside.setdefault(bucket, set())
            out.add(value)
            if kind == "date":
                out.add(value[1:])
        if source != "tool" and bucket in self.said:
            self.said[bucket].add(value)
            if kind == "date":
                self.said["date"].add(value[1:])


def join(parts: list[Index]) -> Index:
    if len(parts) == 1:
        return parts[0]
    # Most messages give no fact (a greeting, a call without arguments): an empty index adds nothing.
    parts = [p for p in parts if p.facts or p.ids or p.rows]
    out = Index([])
    out.facts = list(chain.from_iterable(p.facts for p in parts))
    out.by_entity = JoinedEntities([p.by_entity for p in parts if p.by_entity])
    for p in parts:
        out.assistant_keyed += p.assistant_keyed
        out.rows.update(p.rows)
    for name in ("ids", "numbers", "money", "days", "tool_ids", "tool_turns", "assistant_ids", "names", "tool_names"):
        setattr(out, name, set().union(*(getattr(p, name) for p in parts)))
    for name in ("seen", "outside", "said"):
        merged: dict[str, set[Any]] = {}
        for p in parts:
            for k, v in getattr(p, name).items():
                merged.setdefault(k, set()).update(v)
        setattr(out, name, {**getattr(out, name), **merged})
    return out


class JoinedEntities:
    """``by_entity`` of joined indexes: which records there are is known at once (a set union), a
    record's facts (in the parts' order) are gathered when first asked for. A check asks about a
    few records; a dialogue holds hundreds (every flight of a search)."""

    __slots__ = ("_parts", "_keys", "_facts")

    def __init__(self, parts: list[Any]):
        self._parts = parts
        self._keys: set[str] = set().union(*parts)
        self._facts: dict[str, list[Fact]] = {}

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
