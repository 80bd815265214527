"""The facts of one message of a dialogue, read once: a tool result (as records, whatever its
format), a call's arguments, what the user or the assistant said. A client sends the whole dialogue
every turn, so what was read is kept (``READ``) and a turn reads only what is new to it."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable

from policies import untrusted
from policies.untrusted import instruction_spans, remembered_spans
from refiners.claims import claims_found
from refiners.evidence_index import EMPTY, Index
from refiners.facts import _READ_LEAVES, Fact, Row, _record_ids, facts_from_json, facts_from_text, id_positions
from refiners.records import read_records
from refiners.text import key_words

_CACHES: list["TextCache"] = []


class TextCache:
    """Values kept by a key whose last element is a text. The key holds the text itself: a dict
    compares it on a hash match, so two texts never share an entry (a key of its hash and length
    could). Bounded by the characters its keys hold, not by entries: a few messages of 200 KB
    weigh as much as thousands of short ones; the least recently used go first."""

    def __init__(self, max_chars: int):
        self.max_chars = max_chars
        self.items: OrderedDict[tuple, Any] = OrderedDict()
        self.held = 0  # characters of text the keys hold
        # A big dialogue's evidence is built in a worker thread while the loop builds another's:
        # the entries and their count change together. (build() runs outside it.)
        self._lock = threading.Lock()
        _CACHES.append(self)

    def get(self, key: tuple, build: Callable[[], Any]) -> Any:
        """``build()`` once per key (while kept)."""
        with self._lock:
            hit = self.items.get(key, _MISSING)
            if hit is not _MISSING:
                self.items.move_to_end(key)
                return hit
        value = build()
        if len(key[-1]) > self.max_chars // 4:
            return value  # one huge text is read each time rather than evict everything else
        with self._lock:
            if key not in self.items:
                self.items[key] = value
                self.held += len(key[-1])
            while self.held > self.max_chars and self.items:
                old, _ = self.items.popitem(last=False)
                self.held -= len(old[-1])
        return value

    def clear(self) -> None:
        with self._lock:
            self.items.clear()
            self.held = 0


_MISSING = object()
# The facts of a message already read (same position, same call, same text): ~ the dialogues of a
# hundred conversations in flight.
READ = TextCache(2_000_000)
# A tool result's facts, by its text and the call that fetched it: an agent that calls the same
# tool again gets the same text at another position, where each fact is copied with that position
# instead of parsing, scanning and walking the text again.
WALKED = TextCache(1_000_000)
# Whether a field of a result that plants instructions is one of them, by the field's text.
PLANTED = TextCache(250_000)


def ids_of(text: str) -> list[str]:
    return [i for _, i in id_positions(text)]


def forget() -> None:
    """Drop every message read (a bench or a test that measures reading afresh)."""
    for cache in _CACHES:  # (also those other modules keep, such as the profile's)
        cache.clear()
    _READ_LEAVES.clear()  # and the fields read
    untrusted.forget()  # and the planted-instruction scans, shared with inception


def tool_facts(text: str, turn: int, entity: tuple[str, ...], record: frozenset[str]) -> Index:
    def build() -> Index:
        facts, rows = WALKED.get((entity, record, text), lambda: _read(text, turn, entity, record))
        if facts and facts[0].turn != turn:  # read at another position: its facts as they are here
            facts = [Fact(f.key, f.kind, f.value, f.display, f.source, f.record, turn, f.entities, f.own, f.name,
                          f.anonymous, f.row) for f in facts]
        return _index(facts, (), {(turn, n): row for n, row in rows.items()})

    return READ.get(("tool", turn, entity, record, text), build)


def _read(text: str, turn: int, entity: tuple[str, ...], record: frozenset[str]) -> tuple[list[Fact], dict[int, Row]]:
    data = read_records(text)  # JSON, YAML, "Key: value" lines or a Markdown table: records
    # Most results have none: one scan says so, the one inception made of this result (its read is
    # shared whenever the result names none of the client's tools, which the spans then do not depend on).
    planted = bool(remembered_spans(text))
    if data is None:
        return facts_from_text(data_only(text) if planted else text, "tool", turn), {}
    # In records, a field that carries instructions (an email body, a transaction subject) is
    # dropped, not the record around it: its amount and date are still the record's.
    rows: dict[int, Row] = {}
    facts = facts_from_json(data, "tool", turn, entity, record, skip=_planted if planted else None, rows=rows)
    return facts, rows


def _planted(value: str) -> bool:
    return PLANTED.get((value,), lambda: bool(instruction_spans(value)))  # (a field: inception reads no field alone)


def data_only(text: str) -> str:
    """The text with every passage that gives the assistant instructions blanked (same length, so
    offsets hold): a date or an amount inside a planted instruction is no fact about anything."""
    spans = remembered_spans(text)
    if not spans:
        return text
    chars = list(text)
    for a, b in spans:
        chars[a:b] = " " * (b - a)
    return "".join(chars)


def said_facts(text: str, source: str, turn: int) -> Index:
    kinds = ("id", "money", "date", "time", "status") if source == "assistant" else ("id", "money", "date", "time", "number")
    def build() -> Index:
        found = id_positions(text)  # the ids of the text read once, for its values and for the index
        # An earlier reply of the assistant is a draft rein checked: its values were found then.
        claims = claims_found(text) if source == "assistant" else None
        return _index(facts_from_text(text, source, turn, kinds, found, claims), [i for _, i in found])

    return READ.get((source, turn, text), build)


def call_facts(raw: str, name: str, turn: int, parts: list[Index]) -> tuple[frozenset[str], tuple[str, ...]]:
    """(the call's words, the ids it was made with); what the agent asked for (a search's date) is a
    value it may state, so its arguments join the evidence as seen values, not as facts."""
    def build() -> tuple[Index, tuple[str, ...]]:
        args = _json(raw)
        if not isinstance(args, dict):
            return EMPTY, ()
        return _index(facts_from_json(args, "call", turn)), tuple(_record_ids(args))

    index, ids = READ.get(("call", turn, name, raw), build)
    parts.append(index)
    return key_words(name), ids


def _index(facts: list[Fact], ids: list[str] | tuple[()] = (), rows: dict | None = None) -> Index:
    """One message's index; the one shared empty index when the message holds nothing (a greeting,
    a call without arguments: about half of a dialogue's messages), which the cache then holds
    instead of an index of empty lookups per message (each walked by young collections)."""
    return Index(facts, ids, rows) if facts or ids or rows else EMPTY


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
