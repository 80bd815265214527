"""What the earlier messages of a dialogue speak of: identifiers with a kind (the candidates a
vague reference may point at; ``inception.references`` weighs them against the user's turn).

A *candidate* is an identifier with a *kind*: from the structure of a tool result (the key that
holds it: ``reservation_id``, ``flight_number``, ``"orders": [...]``), else from the noun before it
in text ("reservation FDZ0T5", "orders #W1 and #W2"), else from its shape (``W1001`` and ``W1002``
are rivals). Ids of what users do not act on (``user_id``, payment ids) are known, of no kind
(``OTHER``).

Cost is bounded and linear: of each earlier message its first ``MESSAGE_CHARS`` (JSON up to that
size parsed and walked, ``JSON_NODES`` nodes in all; longer JSON read by its key-value pairs; at
most ``MAX_IDS`` ids a message), and earlier messages newest first until ``CONTEXT_CHARS`` were
read (``inception.context``); what is past a cap is not read.
"""
from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from inception.memo import TextMemo

MESSAGE_CHARS = 24_000
CONTEXT_CHARS = 64_000
JSON_NODES = 4_000      # in all earlier tool results together
MAX_IDS = 200           # per message
OTHER = "other"         # the kind of ids nobody refers to as "it" (user IDs, payment IDs)

# ORD-1001, W2378156, #W2378156, #40213, FDZ0T5 (letters and digits; bare numbers only with a '#')
ID = re.compile(r"(?<![\w#-])#?((?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{3,15}|(?<=#)\d{4,})(?![\w-])")
# Kinds of entity a user acts on, and the words users have for them.
KINDS = {"order": "order", "purchase": "order", "package": "order", "parcel": "order", "shipment": "order",
         "delivery": "order", "reservation": "reservation", "booking": "reservation", "trip": "reservation",
         "flight": "flight", "item": "item", "product": "item", "ticket": "ticket", "subscription": "subscription",
         "appointment": "appointment", "line": "line", "device": "device"}
NOUNS = "|".join(sorted(KINDS, key=len, reverse=True))
# In free text: a code in capitals and digits, or a noun of a kind, after a character not of a word (the
# text is read with a blank before it). A match starts with that character: the engine skips to the next
# one in C, a third of the cost of looking behind every character (same matches: tests/test_inception_memo.py).
_FIRSTS = "".join(sorted({k[0] for k in KINDS}))
MENTION = re.compile(rf"[^\w](?=[#0-9A-Z]|(?i:[{_FIRSTS}]))(?:(?<![#-])(#?[A-Z0-9][A-Z0-9-]{{3,15}}|#\d{{4,}})(?![\w-])"
                     rf"|(?i:({NOUNS})(?:s|es)?\b))")
# What may stand between a noun and its ids: "reservation ID: X", "orders X, Y and Z", "Flight **X**".
GAP = re.compile(r"(?:[\s:*#(),-]|\b(?:id|ids|number|numbers|code|no|and|or|is)\b){0,12}", re.I)
# "key": "value" and "key": ["v1", "v2"] in JSON too long to parse whole.
PAIR = re.compile(r'"(\w{2,40})"\s*:\s*(?:"([^"\s]{3,40})"|\[((?:\s*"[^"]{0,40}"\s*,?){1,50})\])')
# Words too common to tell candidates apart.
STOP = set("""about after again also because been before being could does doing from have having here into
just like more most much need only other over please same should some such than that their them then there
these they this those through very want what when where which while with would your yours thanks thank
today tomorrow status cancel return change modify update book price total help make sure know""".split())


@dataclass(slots=True)  # (no __dict__: one object a candidate for the collector, and many are kept)
class Candidate:
    ident: str
    kind: str
    around: str     # the JSON object holding it, or the text near it: what a qualifier can fit
    owner: str | None = None   # the id of the object it is part of (a reservation's flights)


def kind_of(word: str) -> str | None:
    w = word.lower()
    if w.endswith("ies"):
        w = w[:-3] + "y"
    elif w.endswith("s") and w[:-1] in KINDS:
        w = w[:-1]
    return KINDS.get(w)


@lru_cache(maxsize=4096)
def _key_kind(key: str, parent: str | None) -> str | None:
    """The kind of the id a key holds; ``OTHER`` for ids of what users do not act on (a user, a
    payment), so that a user ID in the turn is not taken for the order it means."""
    k = key.lower()
    if k == "id":
        return kind_of(parent or "") or OTHER
    for tail in ("_id", "_number", "_code", "_no", "id", "number"):
        if k.endswith(tail) and len(k) > len(tail):
            return kind_of(k[: -len(tail)].rstrip("_")) or OTHER
    return None


_SHAPE = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "A" * 26 + "9" * 10)


SHAPE = "shape:"


def _shape(ident: str) -> str:
    return SHAPE + ident.translate(_SHAPE)


def content_words(text: str) -> set[str]:
    """Content words (and three-letter codes such as airports), lower-cased."""
    return {w.lower() for w in re.findall(r"[A-Za-z]{4,}|\b[A-Z]{3}\b", text) if w.lower() not in STOP}


_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTHS = "january february march april may june july august september october november december".split()
DATE_WORDS = frozenset(_WEEKDAYS + _MONTHS)


def date_words(text: str) -> set[str]:
    """The weekday and month names of the ISO dates in a text ("2026-12-08": tuesday, december): the
    words a user has for a date that records write in digits."""
    out = set()
    for m in _ISO_DATE.finditer(text):
        try:
            day = datetime.date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            continue
        out.update((_WEEKDAYS[day.weekday()], _MONTHS[day.month - 1]))
    return out


# ---- candidates -------------------------------------------------------------------------
def _scalars(node: dict) -> str:
    """The object's own values, then the text values of the objects it holds (an order's item names):
    what distinguishes it from its siblings."""
    parts, held = [], []
    for v in node.values():
        if isinstance(v, list):
            parts += [str(x) for x in v[:20] if isinstance(x, (str, int, float))]
            held += [x for x in v[:20] if isinstance(x, dict)]
        elif isinstance(v, (str, int, float)):
            parts.append(str(v))
        elif isinstance(v, dict):
            held.append(v)
    for h in held:
        parts += [x for x in list(h.values())[:20] if isinstance(x, str) and not any(map(str.isdigit, x))]
    return " ".join(parts)[:600]


def _walk(node: Any, parent: str | None, owner: str | None, out: list[tuple[int, Candidate]], budget: list[int]) -> None:
    """Ids under keys that name their kind; ``owner``: the id of the object they are part of
    (a reservation's flights). Each comes with the number of the node it was found at (nodes
    counted in the order they are walked, from a budget of ``JSON_NODES``)."""
    budget[0] -= 1
    if budget[0] < 0:
        return
    if isinstance(node, dict):
        at = JSON_NODES - budget[0]
        own = around = None
        for key, value in node.items():
            if isinstance(value, str):
                kind = _key_kind(key, parent)
                if kind and 2 < len(value) <= 40 and " " not in value:
                    around = _scalars(node) if around is None else around  # (once per object)
                    out.append((at, Candidate(value.lstrip("#"), kind, around, owner)))
                    own = own or (value.lstrip("#") if kind != OTHER else None)
            elif isinstance(value, list) and value and all(isinstance(v, str) for v in value[:50]):
                kind = kind_of(key)
                if kind and all(" " not in v and 2 < len(v) <= 40 for v in value[:50]):
                    out += [(at, Candidate(v.lstrip("#"), kind, "", owner)) for v in value[:50]]
        for key, value in node.items():
            if isinstance(value, (dict, list)):
                _walk(value, key, own or owner, out, budget)
    elif isinstance(node, list):
        for v in node:
            if budget[0] < 0:
                return
            _walk(v, parent, owner, out, budget)


# What a tool result that is JSON holds, read once per text (a dialogue's results come back with every
# request): (node number, candidate) walked from the whole budget and the nodes walked (JSON_NODES + 1:
# more), or the candidates of its key-value pairs (no budget used); None when it is not JSON.
_Read = tuple[list[tuple[int, "Candidate"]], int] | tuple[list["Candidate"], None] | None
_JSON: TextMemo[_Read] = TextMemo(2_000_000)


def _read_json(text: str) -> _Read:
    head = text[:MESSAGE_CHARS].lstrip()
    if head[:1] not in "{[":
        return None
    if len(text) <= MESSAGE_CHARS:
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if data is not None:
            out: list[tuple[int, Candidate]] = []
            budget = [JSON_NODES]
            _walk(data, None, None, out, budget)
            return out, (JSON_NODES - budget[0] if budget[0] >= 0 else JSON_NODES + 1)
    pairs = []
    for m in PAIR.finditer(head):
        kind = _key_kind(m.group(1), None) if m.group(2) else kind_of(m.group(1))
        values = [m.group(2)] if m.group(2) else re.findall(r'"([^"\s]{3,40})"', m.group(3))
        if kind:
            pairs += [Candidate(v.lstrip("#"), kind, head[max(0, m.start() - 200): m.end() + 200]) for v in values[:50]]
    return pairs, None


def _from_json(text: str, budget: list[int]) -> list[Candidate] | None:
    """Candidates of a tool result that is JSON, walked within what is left of the ``budget`` of
    nodes (shared: the newer results are walked first); one too long to parse is read by its
    key-value pairs."""
    read = _JSON.get(text, _read_json)
    if read is None:
        return None
    if budget[0] <= 0:
        return []   # the newer results used the whole budget
    found, walked = read
    if walked is None:
        return list(found)
    left = budget[0]  # a walk from it stops after that many nodes: what the first ones held
    budget[0] = left - walked if walked <= left else -1
    return [c for at, c in found if at <= left] if walked > left else [c for _, c in found]


_Mention = tuple[int, int, bool, "str | None", bool]


def _mentions(text: str) -> list[_Mention]:
    """MENTION's matches in the text, read once per text: (start, end, whether it is a noun, the
    noun's kind or the code without its '#', whether the code has an id's shape)."""
    out: list[_Mention] = []
    for m in MENTION.finditer(" " + text):  # (positions in the text: one less)
        if m.group(2):
            out.append((m.start(2) - 1, m.end() - 1, True, kind_of(m.group(2)), False))
        else:
            out.append((m.start(1) - 1, m.end() - 1, False, m.group(1).lstrip("#"), ID.fullmatch(m.group(1)) is not None))
    return out


_MENTIONS: TextMemo[list[_Mention]] = TextMemo(2_000_000)


def ids_in_text(text: str, known: dict[str, str], shapes: dict[str, str | None]) -> list[Candidate]:
    """Ids in free text, in one pass (the first ``MAX_IDS``): a known id keeps its kind; a new one takes
    the kind of the noun before it ("reservation FDZ0T5", "orders #W1, #W2 and #W3", "Flight Number:
    HAT284"), else that of the ids of its shape (in this text, then anywhere), else its shape."""
    out: list[Candidate] = []
    spans: list[tuple[int, int]] = []
    noun, after = None, 0
    for start, end, is_noun, token, shaped in _MENTIONS.get(text, _mentions):
        if is_noun:
            noun, after = token, end
            continue
        kind = known.get(token)
        if kind is None and not shaped:
            continue   # an all-caps word, not an id
        if noun and not GAP.fullmatch(text, after, start):
            noun = None
        after = end
        out.append(Candidate(token, kind or noun or _shape(token), ""))
        spans.append((start, end))
        if len(out) >= MAX_IDS:
            break
    for i, c in enumerate(out):
        c.around = _around(text, spans, i)
    local = dict(shapes)
    for c in out:
        if not c.kind.startswith(SHAPE) and c.kind != OTHER:
            local[_shape(c.ident)] = c.kind if local.get(_shape(c.ident), c.kind) == c.kind else None
    for c in out:
        if c.kind.startswith(SHAPE) and local.get(c.kind):
            c.kind = local[c.kind]
    return out


def _around(text: str, spans: list[tuple[int, int]], i: int) -> str:
    """The text near the ``i``-th id (80 characters before, 120 after), what a user's qualifier is fitted
    to; it stops at the line of the neighbouring id, or at that id when on the same line: the rows of a
    table or the items of a list are close together, and one read into its neighbour's would make a
    qualifier ("the sakura one") fit both. (Each gap between ids is scanned at most twice: linear.)"""
    start, end = spans[i]
    lo, hi = max(0, start - 80), end + 120
    if i:
        before = spans[i - 1][1]
        nl = text.find("\n", before, start)
        lo = max(lo, nl + 1 if nl >= 0 else before)
    if i + 1 < len(spans):
        after = spans[i + 1][0]
        nl = text.rfind("\n", end, after)
        hi = min(hi, nl if nl >= 0 else after)
    return text[lo:hi]
