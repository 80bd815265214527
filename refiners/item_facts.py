"""A value the words tie to one of a record's id-less list items: an order's "Vacuum Cleaner (black):
$120.50" is that item's price, though the item has no id a sentence could name it by.

A fact read inside such an item carries its ``Item`` (``Fact.anonymous``), which keeps the item's
short texts: its name and its options' values. When the words between the previous value and this
one name one of the record's items more fully than any other (by those texts, as whole words), the
value is checked against that item's value of its kind, which must be single. The checker's usual
guards apply; when the words name another amount of the record (its total), or no item, or items
whose values differ, the checker goes on as it would have (``GO_ON``). The checker asks about
amounts only: a date or a count of an item (a passenger's date of birth) is not measured yet.

Each item's words are read once (its texts split when first asked); a record's items are indexed by
their first word once per evidence, and a value's words are read once: no pattern per item.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Callable
from weakref import WeakKeyDictionary

from refiners.assertion import unasserted

if TYPE_CHECKING:
    from refiners.claims import Claim
    from refiners.facts import Fact

# Words that make a value something computed from the facts rather than one of them.
DERIVED = re.compile(r"\b(?:total|totals|remaining|remain|left|difference|refund(?:ed)?|new|updated|after|"
                     r"combined|altogether|sum|additional|extra|saving|savings|discount|per|each|both|all|"
                     r"more|less|up to|within|last|next|over|under|about|around|approximately)\b", re.I)
# A term or the result of a sum the reply writes out: an operator between this value and another
# number ("$112 + $104 = $216", "2 × $121"); a dash that starts a list item ("** - $100") is none.
# (a number of its own: the digits of a name, "iPhone 3GS** - $1000", are no term)
SUM_BEFORE = re.compile(r"(?<![A-Za-z\d])\d+(?:[.,]\d+)*(?![A-Za-z\d])[^\d\n]{0,20}?(?:[+=×*/]|\s-)\s*$")
SUM_AFTER = re.compile(r"\s*(?:[+=×*/]|-\s)\s*[$€£]?\d")

GO_ON = object()  # not about one item: the checker decides as it would have
_WORD = re.compile(r"\w+")
MAX_TEXTS = 12  # short texts kept per item (a name and a few options; an item is no document)


class Item:
    """An id-less list item of a record (one of an order's items, one of several passengers): the
    short texts it holds, by which a sentence names it. Truthy: a fact's ``anonymous``."""

    __slots__ = ("texts", "_words")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self._words: frozenset[tuple[str, ...]] | None = None

    def add(self, value: str) -> None:
        """A string field of the item (an id of digits names nothing a reply would say)."""
        if 3 <= len(value) <= 40 and len(self.texts) < MAX_TEXTS and not value.isdigit():
            self.texts.append(value)

    def words(self) -> frozenset[tuple[str, ...]]:
        """Each text as its words, lower-cased ("Vacuum Cleaner" -> ("vacuum", "cleaner"))."""
        if self._words is None:
            self._words = frozenset(w for w in (tuple(_WORD.findall(t.lower())) for t in self.texts) if w)
        return self._words


class _Record:
    """A record's id-less items: each item's texts by their first word, each item's facts, and the
    key words of the record's amounts that are no item's (its total, its payments)."""

    __slots__ = ("first", "facts", "others")

    def __init__(self, pool: list[Fact]):
        self.first: dict[str, list[tuple[tuple[str, ...], Item]]] = {}
        self.facts: dict[Item, list[Fact]] = {}
        others: set[str] = set()
        for f in pool:
            item = f.anonymous
            if not item:
                if f.kind == "money":
                    others |= f.key
                continue
            got = self.facts.get(item)
            if got is None:
                got = self.facts[item] = []
                for w in item.words():
                    self.first.setdefault(w[0], []).append((w, item))
            got.append(f)
        self.others = frozenset(others)

    def named(self, words: list[str]) -> list[Item]:
        """The items ``words`` name most texts of (all of them on a tie)."""
        found: dict[Item, set[tuple[str, ...]]] = {}
        first = self.first
        for i, word in enumerate(words):
            for w, item in first.get(word, ()):
                if len(w) == 1 or tuple(words[i:i + len(w)]) == w:
                    found.setdefault(item, set()).add(w)
        if not found:
            return []
        best = max(len(ws) for ws in found.values())
        return [item for item, ws in found.items() if len(ws) == best]


# evidence -> the records asked about (by the ids naming them) -> their items
_RECORDS: WeakKeyDictionary[Any, dict[tuple[str, ...], _Record]] = WeakKeyDictionary()


def _record(ev: Any, entities: list[str], pool: list[Fact]) -> _Record:
    records = _RECORDS.get(ev)
    if records is None:
        records = _RECORDS[ev] = {}
    key = tuple(entities)
    record = records.get(key)
    if record is None:
        record = records[key] = _Record(pool)
    return record


def item_fact(ev: Any, text: str, claim: Claim, s: int, e: int, start: int, pool: list[Fact],
              entities: list[str], naming: Callable[[Claim, int, int], set[str]]) -> Any:
    """The fact ``claim`` (in the sentence ``text[s:e]``) contradicts as the value of the one item
    the words from ``start`` (the previous value's end) name; None to leave it as written; ``GO_ON``
    when the words tie it to no one item. ``pool``: the named records' facts (none holds the value);
    ``naming``: the checker's words naming a value's attribute."""
    record = _record(ev, entities, pool)
    if not record.first:
        return GO_ON
    items = record.named(_WORD.findall(text[max(s, start):claim.start].lower()))
    facts = [f for item in items for f in record.facts[item] if f.kind == claim.kind]
    if not facts or len({repr(f.value) for f in facts}) != 1:
        return GO_ON
    if ev.seen(claim):
        return None  # the value is one rein has seen: never "corrected"
    fact = facts[0]
    if naming(claim, s, e) & (record.others - fact.key):
        return GO_ON  # the words name another amount of the record (its total)
    if unasserted(text, claim.start, claim.end, s, e):
        return None
    if SUM_BEFORE.search(text[max(s, claim.start - 24):claim.start]) \
            or SUM_AFTER.match(text, claim.end, min(e, claim.end + 16)):
        return None  # a term or result of the reply's own sum
    if DERIVED.search(text[max(s, claim.start - 40):min(e, claim.end + 12)]) or ev.derivable(claim.value):
        return None  # worked out from the item's value (a total, a refund, a difference), not restated
    return fact
