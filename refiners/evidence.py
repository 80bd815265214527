"""What rein can check a draft against, as typed facts about named things.

A fact from a tool result knows *which thing* it is about — the records holding it, found through
the JSON's nesting and its identifier keys (``reservation_id``, ``flight_number``, ``id`` ...), and
the call's own id arguments — and *which attribute* it is (the key path inside that record). The
factuality pass binds a claim to facts only through both; everything else here is a set of values
rein has seen (tool results, documents, what the user and the assistant said), which a draft may
repeat freely.

    ev = Evidence.from_context(ctx)
    ev.entities_in("Flight HAT069 departs at 6am")   # -> {"HAT069"} when a tool result names it

Building it is linear in the text it reads and bounded (``READ_LIMIT``); the current turn's tool
results are read first, and what is skipped is said in ``notes``.
"""
from __future__ import annotations

import json
from collections import OrderedDict
from decimal import Decimal
from typing import Any, Iterable

from policies.messages import AssistantMessage, ToolMessage, UserMessage, text_of
from policies.untrusted import instruction_spans
from refiners.claims import Claim, comparable, same_value
from refiners.facts import Fact, _record_ids, facts_from_json, facts_from_text
from refiners.records import read_records
# Re-exported: refiners read words and sentences through this module.
from refiners.text import (_ID_TOKEN, STOP, Sentences, context_words, id_norm, is_id, key_words,  # noqa: F401
                           near_words, norm, sentence_of, words)

READ_LIMIT = 256_000  # characters of tool results and documents read per turn (newest first)


class Index:
    """The lookups factuality needs over some facts. Built once per message and cached (see
    ``_remembered``): a dialogue's evidence joins its messages' indexes, set unions in C."""

    __slots__ = ("facts", "by_entity", "ids", "numbers", "money", "seen", "days", "outside", "said",
                 "tool_ids", "tool_turns", "assistant_ids", "assistant_keyed", "names", "tool_names")

    def __init__(self, facts: list[Fact], ids: Iterable[str] = ()):
        self.facts = facts
        self.by_entity: dict[str, list[Fact]] = {}
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


def _join(parts: list[Index]) -> Index:
    if len(parts) == 1:
        return parts[0]
    out = Index([])
    out.facts = [f for p in parts for f in p.facts]
    for p in parts:
        for e, fs in p.by_entity.items():
            out.by_entity.setdefault(e, []).extend(fs)
        out.assistant_keyed += p.assistant_keyed
    for name in ("ids", "numbers", "money", "days", "tool_ids", "tool_turns", "assistant_ids", "names", "tool_names"):
        setattr(out, name, set().union(*(getattr(p, name) for p in parts)))
    for name in ("seen", "outside", "said"):
        merged: dict[str, set[Any]] = {}
        for p in parts:
            for k, v in getattr(p, name).items():
                merged.setdefault(k, set()).update(v)
        setattr(out, name, {**getattr(out, name), **merged})
    return out


class Evidence:
    def __init__(self, facts: list[Fact] | Index, notes: list[str] | None = None, said: Iterable[str] = ()):
        index = facts if isinstance(facts, Index) else Index(facts)
        if said:
            index = _join([index, Index([], (i for text in said for i in _ids_of(text)))])
        index.ids.update(index.by_entity)
        self.index = index
        self.facts = index.facts
        self.notes = notes or []
        self.by_entity = index.by_entity
        self.ids = index.ids
        self._numbers, self._money, self._seen, self._days = index.numbers, index.money, index.seen, index.days
        self._outside, self._said = index.outside, index.said

    @classmethod
    def from_context(cls, ctx: Any) -> "Evidence":
        parts: list[Index] = []
        notes: list[str] = []
        messages = ctx.messages
        calls: dict[str, tuple[frozenset[str], tuple[str, ...]]] = {}
        for i, m in enumerate(messages):
            if isinstance(m, AssistantMessage):
                for call in m.tool_calls or []:
                    raw = call.function.arguments or ""
                    calls[call.id] = _call_facts(raw, call.function.name, i, parts)
        budget = READ_LIMIT
        skipped = 0
        # Newest first: when the budget runs out, what goes unread is the oldest.
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            if not isinstance(m, ToolMessage):
                continue
            text = text_of(m)
            if len(text) > budget:
                skipped += 1
                continue
            budget -= len(text)
            record, entity = calls.get(m.tool_call_id, (frozenset(), ()))
            parts.append(_tool_facts(text, i, entity, record))
        for doc in ctx.documents or []:
            if len(doc) > budget:
                skipped += 1
                continue
            budget -= len(doc)
            parts.append(Index(facts_from_text(_data_only(doc), "document", -1)))
        for i, m in enumerate(messages):
            if isinstance(m, (UserMessage, AssistantMessage)):
                text = text_of(m)
                if not text or len(text) > budget:
                    skipped += bool(text)
                    continue
                budget -= len(text)
                source = "user" if isinstance(m, UserMessage) else "assistant"
                parts.append(_said_facts(text, source, i))
        if skipped:
            notes.append(f"factuality: read the newest {READ_LIMIT // 1000} KB of the dialogue; "
                         f"{skipped} older message(s) not read")
        return cls(_join(parts) if parts else Index([]), notes)

    def of(self, *sources: str) -> list[Fact]:
        return [f for f in self.facts if f.source in sources]

    def has(self, *sources: str) -> bool:
        return any(f.source in sources for f in self.facts)

    # ---- what factuality asks -----------------------------------------------------------
    def seen(self, claim: Claim) -> bool:
        """The value is one rein has seen anywhere (a tool, a document, the user, the assistant)."""
        if claim.kind in ("money", "number", "percent"):
            return claim.value in self._numbers
        if claim.kind == "id":
            return claim.value in self.ids
        if claim.kind == "date":  # a date without its year matches that day in any year
            return (claim.value[1:] if claim.value[0] is None else claim.value) in self._days
        return claim.value in self._seen.get(claim.kind, ())

    def said(self, claim: Claim) -> bool:
        """The value is one the user, a document, the agent's calls or its earlier turns gave."""
        if claim.kind in ("money", "number", "percent"):
            return claim.value in self._said["number"]
        if claim.kind == "date":
            return (claim.value[1:] if claim.value[0] is None else claim.value) in self._said["date"]
        return claim.value in self._said.get(claim.kind, ())

    @staticmethod
    def holds(facts: list[Fact], claim: Claim) -> bool:
        """One of ``facts`` has the claim's value (whatever its attribute)."""
        numeric = claim.kind in ("money", "number")
        return any((f.value == claim.value and f.kind in ("money", "number")) if numeric
                   else (f.kind == claim.kind and same_value(claim.kind, claim.value, f.value)) for f in facts)

    def seen_outside_assistant(self, claim: Claim) -> bool:
        """The value is in a tool result, a document, a call or the user's words (not only the assistant's)."""
        kind = "number" if claim.kind in ("money", "number") else claim.kind
        value = claim.value[1:] if claim.kind == "date" and claim.value[0] is None else claim.value
        return value in self._outside.get(kind, ())

    def entities_in(self, text: str) -> list[str]:
        """Identifiers of records in the evidence that ``text`` names, in the order named."""
        out = []
        for t in _ID_TOKEN.findall(text):
            n = id_norm(t.rstrip("-_"))
            if n in self.by_entity and n not in out:
                out.append(n)
        return out

    def about(self, entities: list[str]) -> list[Fact]:
        """Facts of the records named; when several are named, those inside all of them if any."""
        if not entities:
            return []
        if len(entities) == 1:
            return self.by_entity.get(entities[0], [])
        every = [f for f in self.by_entity.get(entities[0], []) if all(e in f.entities for e in entities[1:])]
        return every or [f for e in entities for f in self.by_entity.get(e, [])]

    def derivable(self, value: Decimal) -> bool:
        """``value`` follows from the amounts in view by simple arithmetic: a sum or difference of two,
        a multiple by a small count (per-passenger totals), or a column's sum."""
        ops = set(self._money)  # amounts, not counts: a seat count is no operand of a price
        ops |= self._sums()
        if len(ops) > 400:
            return True  # too many amounts to say it does not follow from them: do not call it wrong
        for a in ops:
            if value - a in ops or a - value in ops:
                return True
        for k in range(2, 10):
            part = value / k
            if part in ops or any(part - a in ops for a in ops):
                return True
        return False

    def _sums(self) -> set[Decimal]:
        sums: dict[tuple[int, frozenset[str]], Decimal] = {}
        for f in self.facts:
            if f.kind == "money" and f.source == "tool":
                sums[(f.turn, f.key)] = sums.get((f.turn, f.key), Decimal(0)) + f.value
        return set(sums.values())

    # ---- what coherence asks (earlier assistant turns) ----------------------------------
    def judge(self, claim: Claim, ctx: set[str], sentence: set[str], sources: tuple[str, ...],
              near: set[str] = frozenset()) -> tuple[str, Fact | None]:
        """``supported``, ``contradicted`` (with the one fact it contradicts) or ``unverified``: a
        claim contradicts only a fact whose name the words around the claim use, with one value."""
        cands = [f for f in self.facts if f.source in sources and comparable(claim.kind, f.kind)]
        if not cands:
            return "unverified", None
        if any(same_value(claim.kind, claim.value, f.value) for f in cands):
            return "supported", None
        scored = [(len(ctx & f.key) + len(near & f.key), f) for f in cands]
        best = max(s for s, _ in scored)
        if best == 0:
            return "unverified", None
        top = [f for s, f in scored if s == best]
        if len({repr(f.value) for f in top}) == 1:
            return "contradicted", top[0]
        return "unverified", None


# A client sends the whole dialogue every turn: the facts of a tool result already read (same
# position, same call, same text) are reused, so a turn reads only what is new to it.
_READ: OrderedDict[tuple, list[Fact]] = OrderedDict()


def _ids_of(text: str) -> list[str]:
    return [id_norm(t) for t in _ID_TOKEN.findall(text) if is_id(t)]


def _remembered(key: tuple, build) -> list[Any]:
    hit = _READ.get(key)
    if hit is not None:
        _READ.move_to_end(key)
        return hit
    facts = _READ[key] = build()
    while len(_READ) > 4096:  # ~ the messages of a hundred conversations in flight
        _READ.popitem(last=False)
    return facts


def _tool_facts(text: str, turn: int, entity: tuple[str, ...], record: frozenset[str]) -> Index:
    def build() -> Index:
        data = read_records(text)  # JSON, YAML, "Key: value" lines or a Markdown table: records
        planted = bool(instruction_spans(text))  # most results have none: one scan says so
        if data is None:
            return Index(facts_from_text(_data_only(text) if planted else text, "tool", turn))
        # In records, a field that carries instructions (an email body, a transaction subject) is
        # dropped, not the record around it: its amount and date are still the record's.
        return Index(facts_from_json(data, "tool", turn, entity, record, skip=_planted if planted else None))

    return _remembered(("tool", turn, entity, record, len(text), hash(text)), build)


def _planted(value: str) -> bool:
    return bool(instruction_spans(value))


def _data_only(text: str) -> str:
    """The text with every passage that gives the assistant instructions blanked (same length, so
    offsets hold): a date or an amount inside a planted instruction is no fact about anything."""
    spans = instruction_spans(text)
    if not spans:
        return text
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def _said_facts(text: str, source: str, turn: int) -> Index:
    kinds = ("id", "money", "date", "time", "status") if source == "assistant" else ("id", "money", "date", "time", "number")
    return _remembered((source, turn, len(text), hash(text)),
                       lambda: Index(facts_from_text(text, source, turn, kinds), _ids_of(text)))


def _call_facts(raw: str, name: str, turn: int, parts: list[Index]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(the call's words, the ids it was made with); what the agent asked for (a search's date) is a
    value it may state, so its arguments join the evidence as seen values, not as facts."""
    def build() -> tuple[Index, tuple[str, ...]]:
        args = _json(raw)
        if not isinstance(args, dict):
            return Index([]), ()
        return Index(facts_from_json(args, "call", turn)), tuple(_record_ids(args))

    index, ids = _remembered(("call", turn, name, len(raw), hash(raw)), build)
    parts.append(index)
    return key_words(name), ids


def _json(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] not in "{[":
        try:
            return json.loads(stripped) if stripped and stripped[0] in "-0123456789" else None
        except ValueError:
            return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


__all__ = ["Evidence", "Fact", "Sentences", "context_words", "facts_from_json", "facts_from_text", "id_norm",
           "is_id", "key_words", "near_words", "norm", "sentence_of", "words"]
