"""Words and shapes the factuality pass reads text by: content words (normalised, with the few
synonyms agents and tools use for the same attribute), key words of a JSON path, identifier
shapes, and sentence bounds found once per text."""
from __future__ import annotations

import bisect
import re
from functools import lru_cache
from typing import Any

from refiners.claims import Claim

STOP = set("""a an the and or but if of to in on at by for with from as is are was were be been being it its
this that these those your you yours my me we our us i he she they them their his her will would can could
should shall may might must has have had do does did not no yes so than then there here what which who whom
when where why how any all some each per via just also very into about up out over under again please let
know thanks thank hi hello hey sure okay ok get got can't don't won't isn't aren't i'm it's what's where's
i'd you're that's there's""".split())
_SYNONYMS = {"cost": "price", "costs": "price", "priced": "price", "fare": "price", "amount": "total",
             "charge": "total", "charged": "total", "deliver": "arrival", "delivered": "arrival", "delivery": "arrival",
             "arrive": "arrival", "arrives": "arrival", "arriving": "arrival", "arrived": "arrival", "eta": "arrival",
             "expected": "arrival", "lands": "arrival", "landing": "arrival", "ship": "ship", "shipped": "ship", "shipping": "ship", "ships": "ship",
             "shipment": "ship", "depart": "departure", "departs": "departure", "departing": "departure",
             "leaves": "departure", "leave": "departure", "leaving": "departure", "reservation": "booking",
             "confirmation": "booking", "booked": "booking", "book": "booking", "booking": "booking",
             "state": "status", "birth": "dob", "born": "dob", "qty": "quantity", "units": "quantity", "count": "quantity"}
_WORD = re.compile(r"[A-Za-z][A-Za-z']+")
_SENTENCE_END = re.compile(r"[.!?;\n]")
# The same marks, a full stop only before a blank or the end of the text (\s is str.isspace()).
_SENTENCE_ENDS = re.compile(r"[!?;\n]|\.(?!\S)")
# An identifier: a token with a digit and a letter or a long run of digits (HAT069, 4WQ150, #W2378156,
# credit_card_4421486, 1Z999AA10123456784), or a key that says it is one.
_ID_TOKEN = re.compile(r"#?[A-Za-z0-9][A-Za-z0-9_-]*")
# dates, plain amounts, ordinals (2nd, 21st) and storage or dose quantities (512GB, 500mg, 10ml, 5kg);
# not durations ("45m" may be the only name of a schedule's event)
_NOT_ID = re.compile(r"\d{4}-\d{2}-\d{2}|\d+(?:[.,]\d+)?(?:st|nd|rd|th|mg|ml|kg|km|[gmkt]b|[GMKT]B)?$")
REACH = 300  # characters of a sentence read either side of a value
BLANK_LINE = re.compile(r"\n[ \t]*\n")  # a paragraph's end


_NORMS: dict[str, str] = {}  # word -> its normal form: replies and questions reuse a small vocabulary


def norm(word: str) -> str:
    found = _NORMS.get(word)
    if found is None:
        if len(_NORMS) >= 65_536:
            _NORMS.clear()
        found = _NORMS[word] = _norm(word)
    return found


def _norm(word: str) -> str:
    w = word.lower().strip("'")
    if w in _SYNONYMS:
        return _SYNONYMS[w]
    for suffix in ("ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 3 and w.endswith(suffix) and not w.endswith(("us", "ss", "is")):
            stem = w[: -len(suffix)]
            if suffix == "es" and not stem.endswith(("s", "x", "z", "ch", "sh")):
                stem = w[:-1]  # prices → price, not pric
            return _SYNONYMS.get(stem, stem)
    return w


def words(text: str) -> set[str]:
    return {norm(w) for w in _WORD.findall(text) if w.lower() not in STOP}


@lru_cache(maxsize=8192)  # tools repeat their keys in every record and every turn
def key_words(path: str) -> frozenset[str]:
    parts = re.sub(r"([a-z])([A-Z])", r"\1 \2", path).replace("_", " ").replace(".", " ").replace("-", " ")
    return frozenset(norm(w) for w in parts.split() if w.isalpha() and w.lower() not in STOP)


def is_id(value: Any) -> bool:
    """An identifier-shaped value: letters and digits mixed, or six digits and more. Any JSON value
    may come in (a list under an id key is common): only a string or an integer can be an id, and
    only those reach the cache, keyed by text (a cache on the value itself raised on a list)."""
    if isinstance(value, str):
        # letters only (most words of a text) hold no digit: no id, and no trip to the cache
        return not value.isalpha() and _id_text(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return _id_text(str(value))


@lru_cache(maxsize=65536)
def _id_text(value: str) -> bool:
    text = value.lstrip("#")
    if not 3 <= len(text) <= 40 or not _ID_TOKEN.fullmatch(text) or _NOT_ID.match(text):
        return False
    digits = sum(ch.isdigit() for ch in text)
    return digits > 0 and (digits < len(text) or len(text) >= 6)


def id_norm(value: Any) -> str:
    return str(value).lstrip("#").upper()


class Sentences:
    """Sentence bounds of one text, found once: a lookup is a bisect, not a scan from the start."""

    def __init__(self, text: str):
        self.text = text
        # a decimal point or an abbreviation dot inside a value is not the end of a sentence
        self.ends = [m.start() for m in _SENTENCE_ENDS.finditer(text)]

    def bounds(self, start: int, end: int, reach: int = REACH) -> tuple[int, int]:
        """The sentence around [start, end), at most ``reach`` characters either side: a page with no
        full stop is not one sentence to re-read for every value in it."""
        i = bisect.bisect_left(self.ends, start)
        s = self.ends[i - 1] + 1 if i > 0 else 0
        j = bisect.bisect_left(self.ends, end)
        e = self.ends[j] if j < len(self.ends) else len(self.text)
        return max(s, start - reach), min(e, end + reach)


class GrowingSentences(Sentences):
    """Sentence ends of a text that grows at its end (a streamed reply): each end is found once."""

    def __init__(self) -> None:
        self.text = ""
        self.ends: list[int] = []
        self._scanned = 0

    def grow(self, text: str, end: int) -> None:
        """Take ``text`` (the old one and more) and record its sentence ends up to ``end``, by the
        rule ``Sentences`` reads a whole text by."""
        self.text = text
        for m in _SENTENCE_END.finditer(text, self._scanned, end):
            if m.group(0) == "." and m.end() < len(text) and not text[m.end()].isspace():
                continue
            self.ends.append(m.start())
        self._scanned = max(self._scanned, end)


def sentence_of(text: str, start: int, end: int) -> tuple[int, int]:
    return Sentences(text).bounds(start, end)


def context_words(text: str, claim: Claim, before: int = 6, after: int = 2,
                  bounds: tuple[int, int] | None = None) -> set[str]:
    """Content words naming a value: a few before it and after it, within its sentence."""
    s, e = bounds or sentence_of(text, claim.start, claim.end)
    left = [w for w in _WORD.findall(text[max(s, claim.start - 200):claim.start]) if w.lower() not in STOP][-before:]
    right = [w for w in _WORD.findall(text[claim.end:min(e, claim.end + 120)]) if w.lower() not in STOP][:after]
    return {norm(w) for w in left + right} - {norm(claim.text)}


def near_words(text: str, claim: Claim) -> set[str]:
    return context_words(text, claim, before=2, after=0)
