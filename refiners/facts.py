"""Facts: the typed values of tool results, documents and the dialogue, each knowing the records
that hold it (through the JSON's nesting and identifier keys) and the attribute it is (its key path).
One walk per tool result; linear in the text read."""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable, Iterable

from refiners.claims import STATUSES, Claim, read_claims
from refiners.item_facts import Item
from refiners.text import _ID_TOKEN, BLANK_LINE, Sentences, context_words, id_norm, is_id, key_words, words

# "order_id", "Order ID", "order-number", "orderId": the key names the record's identifier.
_ID_KEY = re.compile(r"(?:^|[_\s.-])(?:id|number|code|ref|reference|confirmation|tracking)$|^id$"
                     r"|(?<=[a-z])(?:Id|ID|Number|Code|Ref)$", re.I)
# A number written as text ("100.0" from YAML, "54.20" from a JSON API): read as the number it is.
# Leading zeros (a zip code, an account number) and long digit runs stay text: those are ids.
_NUMERIC = re.compile(r"-?(?:0|[1-9]\d{0,11})(?:\.\d{1,6})?")
_MONEY_KEYS = {"price", "total", "fee", "refund", "balance", "credit", "subtotal", "tax", "fare", "deposit", "rate",
               "due", "salary", "budget", "cost"}
# A field that is only a date, a date and time, or a time (as read_claims would read it).
_STAMP = re.compile(r"(?P<date>(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2}))(?:T(?P<time>(?P<h>\d{2}):(?P<mi>\d{2})"
                    r"(?::\d{2}(?:\.\d+)?)?)(?:Z|[+-]\d{2}:\d{2})?)?"
                    r"|(?P<time2>(?P<h2>\d{1,2}):(?P<mi2>\d{2})(?::\d{2})?)")
MAX_FACTS = 20_000
MAX_ROWS = 5_000     # records of one message kept with their Row
ROW_TEXTS = 6        # short text fields kept per record
_LETTERS = re.compile(r"[A-Za-z]{3}")
_DIGIT = re.compile(r"\d")
_STATUS_WORDS = frozenset(STATUSES)  # (a field's whole text is looked up: one hash, not a scan of the list)
MAX_NODES = 100_000  # a walk visits at most this many nodes (a YAML alias repeats a subtree by reference)


@dataclass(slots=True)
class Fact:
    key: frozenset[str]     # the attribute: key words of its path inside its record
    kind: str
    value: Any
    display: str
    source: str             # tool | document | user | assistant
    record: frozenset[str]  # words of the record it belongs to (sibling keys, tool name)
    turn: int = -1
    entities: tuple[str, ...] = ()  # ids of the records holding it, innermost first
    own: bool = True        # a field of its innermost record itself, not of a record nested in it
    name: str = ""          # the key as the tool wrote it ("scheduled_departure_time_est")
    anonymous: Item | None = None  # the list item with no id of its own holding it (one of several passengers)
    row: int = -1           # the record (a mapping with ids) holding it, numbered within its message


@dataclass(slots=True)
class Row:
    """What else one record says, to tell records that share an id apart (two transfers to one IBAN):
    its short text fields (a subject, a name) and the key each of its ids sits under (sender,
    recipient)."""
    texts: tuple[str, ...] = ()
    roles: dict[str, frozenset[str]] | None = None


def _row_text(value: str) -> str | None:
    """A text field that can tell a record apart when a sentence quotes it: words, not a flag, a
    code or a number ("New year gift", "Spotify Premium"; not "false", "me", "EUR", "100.0")."""
    if not 6 <= len(value) <= 80:
        return None
    text = " ".join(value.split())
    if not 6 <= len(text) <= 60 or not _LETTERS.search(text) or is_id(text):
        return None
    return text.lower()


def _leaf_kind(money: bool, keys: frozenset[str], value: Any) -> str | None:
    """``money``: the keys name an amount (``keys & _MONEY_KEYS``, worked out once per key path)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int) and not money and ("id" in keys or value >= 10000):
        return "id"
    if isinstance(value, (int, float)):
        return "money" if money else "number"
    return None


def _record_ids(node: dict) -> list[str]:
    return [id_norm(v) for k, v in node.items() if isinstance(k, str) and _id_key(k) and is_id(v)]


_ID_KEYS: dict[str, bool] = {}  # key -> whether it names an identifier: tools repeat their keys in every record


def _id_key(key: str) -> bool:
    found = _ID_KEYS.get(key)
    if found is None:
        if len(_ID_KEYS) >= 8192:
            _ID_KEYS.clear()
        found = _ID_KEYS[key] = _ID_KEY.search(key) is not None
    return found


def _named_by(node: dict) -> list[str]:
    """A record with no id key is named by the identifiers it holds (a transfer by its IBAN, a message
    by its sender's handle): a sentence naming one of those is about it."""
    return [id_norm(v) for v in node.values() if isinstance(v, str) and is_id(v)][:4]


class _Reader:
    """Turns JSON tool results into facts: one walk, each leaf seen once."""

    def __init__(self, out: list[Fact], source: str, turn: int, skip: Callable[[str], bool] | None = None,
                 rows: dict[int, Row] | None = None):
        self.out, self.source, self.turn, self.skip = out, source, turn, skip
        self.anonymous: Item | None = None  # the id-less list item being read
        self.nodes, self.rows = MAX_NODES, rows  # rows: filled when given (row number -> Row)
        self.row, self.records = -1, 0  # the record being read, records numbered so far
        self._here: dict[tuple[frozenset[str], tuple[Any, ...]], frozenset[str]] = {}
        # a leaf's last two keys -> (its name, key words, whether they name an amount): the records of
        # a list repeat their keys, so each path is read once
        self._named: dict[tuple[str, ...], tuple[str, frozenset[str], bool]] = {}

    def _record(self, node: dict, own: list[str]) -> None:
        """Number a record, and keep what tells it from another record with the same ids."""
        self.row, self.records = self.records, self.records + 1
        if self.rows is None or len(self.rows) >= MAX_ROWS:
            return
        texts, roles, ids = [], {}, set(own)
        for k, v in node.items():
            if type(v) is not str or type(k) is not str or not 3 <= len(v) <= 80:
                continue  # (an id has 3 to 41 characters, a text field of a record 6 to 80)
            n = id_norm(v)
            if n in ids:
                roles[n] = key_words(k) | {k.lower()}  # "from"/"to" are stop words
            elif len(texts) < ROW_TEXTS:
                text = _row_text(v)
                if text and not (self.skip is not None and len(v) >= 24 and self.skip(v)):
                    texts.append(text)
        self.rows[self.row] = Row(tuple(texts), {i: roles.get(i, frozenset()) for i in own})

    def walk(self, node: Any, chain: tuple[str, ...], path: tuple[str, ...], record: frozenset[str],
             anonymous: Item | None = None, listed: bool = False) -> None:
        self.nodes -= 1
        if self.nodes < 0:
            return
        if isinstance(node, dict):
            # A dict that is a field of another (an item's options, an address) is part of that
            # record, not one of its own: the id-shaped values it holds ("128GB", "IPX4") name nothing.
            own = _record_ids(node) or (_named_by(node) if listed or not path else [])
            outer = self.row
            if own:
                chain, path, anonymous = tuple(own) + chain, (), None
                self._record(node, own)
            elif listed:
                anonymous = Item()
            names = tuple(node)
            here = self._here.get((record, names))
            if here is None:  # the records of a list share their keys: their words are joined once
                here = self._here[(record, names)] = record | {w for k in names if isinstance(k, str)
                                                                 for w in key_words(k)}
            for k, v in node.items():
                if isinstance(v, (dict, list)):
                    self.walk(v, chain, (*path, str(k)), here, anonymous)
                    continue
                # a field: read here, as walk() would (one call a field, not two)
                self.nodes -= 1
                if self.nodes < 0:
                    break  # (every later node is past the bound too: walk() would read none)
                self.anonymous = anonymous
                self.leaf(v, chain, (*path, str(k)), here)
            self.row = outer
        elif isinstance(node, list):
            for v in node:
                self.walk(v, chain, path, record, anonymous, True)
        else:
            self.anonymous = anonymous
            self.leaf(node, chain, path, record)

    def leaf(self, value: Any, chain: tuple[str, ...], path: tuple[str, ...], record: frozenset[str]) -> None:
        if len(self.out) >= MAX_FACTS:
            return
        tail = path[-2:]
        named = self._named.get(tail)
        if named is None:
            name = ".".join(tail)
            keys = key_words(name) if path else frozenset()
            named = self._named[tail] = (name, keys, bool(keys & _MONEY_KEYS))
        name, keys, money = named
        if self.skip is not None and isinstance(value, str) and len(value) >= 24 and self.skip(value):
            return  # a field that gives the assistant instructions states no fact
        if self.anonymous is not None and type(value) is str:
            self.anonymous.add(value)  # what names the item in a sentence (its name, its options' values)
        # The same field with the same value reads the same (the date or the status of every flight in
        # a search): short strings and integers are read once, by their text and key path.
        memo = (name, value) if type(value) is int or type(value) is str and len(value) <= MEMO_CHARS else None
        found = _READ_LEAVES.get(memo) if memo is not None else None
        if found is None:
            found = _leaf_facts(value, keys, money)
            if memo is not None:
                if len(_READ_LEAVES) >= MAX_MEMO:
                    _READ_LEAVES.clear()
                _READ_LEAVES[memo] = found
        own = len(path) <= 1
        # (each fact built in one call: a closure per leaf cost more than the rest of the leaf)
        add, source, turn, row, anonymous = self.out.append, self.source, self.turn, self.row, self.anonymous
        for key, kind, fact_value, display in found:
            add(Fact(key, kind, fact_value, display, source, record, turn, chain, own, name, anonymous, row))


MEMO_CHARS = 100     # fields up to this long are read once per key path and text
MAX_MEMO = 20_000      # (a few MB at most; dropped whole when full)
# (key path, value) -> what the field states: (key words, kind, value, as written) of each fact
_READ_LEAVES: dict[tuple[str, Any], tuple[tuple[frozenset[str], str, Any, str], ...]] = {}


def _leaf_facts(value: Any, keys: frozenset[str], money: bool) -> tuple[tuple[frozenset[str], str, Any, str], ...]:
    """What one field states, by its value and the key words of its path."""
    if isinstance(value, str) and len(value) <= 20 and _NUMERIC.fullmatch(value):
        value = float(value) if "." in value else int(value)
    kind = _leaf_kind(money, keys, value)
    if kind == "id" or (kind is None and is_id(value)):
        return ((keys, "id", id_norm(value), str(value)),)
    if kind:
        return ((keys, kind, Decimal(str(value)), str(value)),)
    if not isinstance(value, str) or not value.strip():
        return ()
    text = value.strip()
    low = text.lower()
    if low in _STATUS_WORDS or ("status" in keys and len(text.split()) <= 3):
        return ((keys | {"status"}, "status", low.replace("canceled", "cancelled"), text),)
    if _DIGIT.search(text, 0, 400) is None:
        if "name" in keys or (text.istitle() and len(text.split()) <= 4):
            return ((keys, "name", text, text),)
        return ()
    stamp = _STAMP.fullmatch(text)
    if stamp:  # "2024-05-20", "2024-05-20T10:00:00", "06:00:00": what most fields hold, read directly
        g = stamp.groupdict()
        out = []
        if g["y"]:
            out.append((keys, "date", (int(g["y"]), int(g["mo"]), int(g["d"])), g["date"]))
        h, mi, shown = (g["h"], g["mi"], g["time"]) if g["h"] else (g["h2"], g["mi2"], g["time2"])
        if h is not None and int(h) <= 23 and int(mi) <= 59:
            out.append((keys, "time", (int(h), int(mi)), shown))
        return tuple(out)
    return tuple((keys if (c.start == 0 and c.end == len(text)) else frozenset(keys | context_words(text, c)),
                  c.kind, c.value, c.text) for c in read_claims(text[:2000]))


def facts_from_json(data: Any, source: str, turn: int, entity: Iterable[str] = (),
                    record: frozenset[str] = frozenset(), skip: Callable[[str], bool] | None = None,
                    rows: dict[int, Row] | None = None) -> list[Fact]:
    """Facts of a parsed tool result; ``skip``: string fields to leave unread (planted instructions);
    ``rows``: filled with each record's ``Row``, by the number its facts carry."""
    out: list[Fact] = []
    _Reader(out, source, turn, skip, rows).walk(data, tuple(entity), (), frozenset(record))
    return out


def id_positions(text: str) -> list[tuple[int, str]]:
    """(offset, normalized id) of each identifier in ``text`` (an id has a digit: a text without one
    has none)."""
    if _DIGIT.search(text) is None:
        return []
    return [(m.start(), id_norm(m.group(0))) for m in _ID_TOKEN.finditer(text) if is_id(m.group(0))]


def facts_from_text(text: str, source: str, turn: int, kinds: tuple[str, ...] | None = None,
                    found: list[tuple[int, str]] | None = None, claims: list[Claim] | None = None) -> list[Fact]:
    """Values in prose; a ``Label: value`` line names its value by the label. Linear in the text.
    ``found``: the text's ``id_positions`` when the caller has them; ``claims``: its ``read_claims``
    of every kind (those of ``kinds`` are kept: the kinds read do not change where a value is)."""
    out = []
    sentences = Sentences(text)
    # Ids found once in the whole text; each value takes those of its sentence by bisection.
    found = id_positions(text) if found is None else found
    starts = [p for p, _ in found]
    keep_record = source in ("tool", "document")
    for c in read_claims(text, kinds) if claims is None else [c for c in claims if kinds is None or c.kind in kinds]:
        s, e = sentences.bounds(c.start, c.end)
        line_start = text.rfind("\n", s, c.start) + 1 or s
        head = text[line_start:c.start]
        key = key_words(head.split(":")[0]) if ":" in head else frozenset(context_words(text, c, bounds=(s, e)))
        first = bisect.bisect_left(starts, s)
        ids = tuple(dict.fromkeys(i for _, i in found[first:bisect.bisect_left(starts, e)]))
        if not ids and first and keep_record:
            ids = _earlier_ids(text, sentences, found, starts, first, s)
        record = frozenset(words(text[s:e])) if keep_record else frozenset()
        out.append(Fact(frozenset(key), c.kind, c.value, c.text, source, record, turn, ids))
    return out


def _earlier_ids(text: str, sentences: Sentences, found: list[tuple[int, str]], starts: list[int], first: int,
                 s: int) -> tuple[str, ...]:
    """The ids of the nearest earlier sentence that names any, for a sentence of a tool's or a
    document's prose that names none: it goes on about that record ("Your package 1Z... departed at
    4:15 PM. Expected delivery: Friday, by 8:00 PM."). Not past a blank line: a new paragraph may be
    about something else. ``first``: the number of ids before ``s``."""
    last = starts[first - 1]
    if BLANK_LINE.search(text, last, s):
        return ()
    lo = bisect.bisect_left(starts, sentences.bounds(last, last + 1)[0], 0, first)
    return tuple(dict.fromkeys(i for _, i in found[lo:first]))
