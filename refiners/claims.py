"""Checkable values in text — amounts, dates, times, IDs, numbers, statuses — found, normalized,
and written back in the style the text used. No model: this is what the deterministic passes see.

    >>> [c.kind for c in find_claims("Order A1234 ($42.50) ships on March 14.")]
    ['id', 'money', 'date']
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
_MON = {m[:3]: i + 1 for i, m in enumerate(MONTHS)} | {"sept": 9}
_MONTH_RE = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_WEEKDAY_RE = r"(?:(?P<wd>Mon|Tues?|Wed(?:nes)?|Thu(?:rs)?|Fri|Sat(?:ur)?|Sun)(?:day)?,?\s+)?"
STATUSES = ["out for delivery", "in transit", "on hold", "out of stock", "in stock", "sold out", "on time",
            "not shipped", "pending", "processing", "shipped", "delivered", "cancelled", "canceled", "refunded",
            "active", "inactive", "confirmed", "failed", "approved", "denied", "declined", "open", "closed",
            "returned", "paid", "unpaid", "overdue", "scheduled", "completed", "expired", "suspended",
            "available", "unavailable", "booked", "delayed", "boarding", "resolved", "escalated", "waitlisted"]
_CUR = {"$": "$", "€": "€", "£": "£", "usd": "$", "dollars": "$", "eur": "€", "euros": "€", "gbp": "£"}

_BY_SIGN = r"(?P<cur>[$€£])\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
# Money written only with a sign ("$42.50"), for a text that names no currency in words: a pattern
# that starts with a character class is looked for only where that class is.
_MONEY_BY_SIGN = re.compile(_BY_SIGN, re.I)
_CURRENCY_WORDS = ("usd", "eur", "gbp", "dollar")

_PATTERNS: list[tuple[str, re.Pattern]] = [
    ("money", re.compile(_BY_SIGN + r"|(?P<num2>\d+(?:\.\d+)?)\s?(?P<cur2>USD|EUR|GBP|dollars|euros)\b", re.I)),
    # (the boundary before the year is a lookbehind after it: a pattern that starts with a digit is
    # searched for by its first character, one that starts with \b is tried at every position)
    ("date", re.compile(r"(?P<y>\d{4})(?<!\w\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?:\b|(?=T\d))")),
    ("date", re.compile(_WEEKDAY_RE + r"\b(?P<mon>" + _MONTH_RE + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"
                        r"(?:,?\s+(?P<y>\d{4}))?")),
    ("date", re.compile(_WEEKDAY_RE + r"\b(?P<d>\d{1,2})(?:st|nd|rd|th)?\s+(?P<mon>" + _MONTH_RE + r")\b"
                        r"(?:,?\s+(?P<y>\d{4}))?")),
    # 06:00, 6:00 pm, 06:00:00 (tools write seconds; a time is never read from inside a longer one)
    # (each pattern below starts by reading its first character, the boundary before it checked
    # after it by a look-behind: a pattern that starts with a look-around or \b is tried at every
    # position of the text, one that starts with a character class only where that class is)
    # "(?<![\d:])(?:\b|(?<=\dT))\d{1,2}:..." with its hour's first digit read first:
    ("time", re.compile(r"(?P<h>\d(?<![\d:]\d)(?:(?<!\w\d)|(?<=\dT\d))\d?):(?P<mi>\d{2})(?::\d{2}(?:\.\d+)?)?"
                        r"(?:\s?(?P<ap>[ap]m\b|[ap]\.m\.))?(?![\w:])", re.I)),
    ("time", re.compile(r"(?P<h>\d(?<!\w\d)\d?)\s?(?P<ap>[ap]m\b|[ap]\.m\.)", re.I)),  # \b\d{1,2}\s?am
    ("percent", re.compile(r"(?P<num>\d(?<!\w\d)\d*(?:\.\d+)?)\s?%")),  # \b\d+(?:\.\d+)?\s?%
    # "#\w*\d\w*", then at a word's start "\b(?=[A-Z0-9-]*\d)(?=[A-Z0-9-]*[A-Z])[A-Z0-9][A-Z0-9-]{2,}[A-Z0-9]\b"
    # (letters and digits mixed), "\b\d{5,}\b", "\b(?:[A-Z]\d{1,3}|\d{1,3}[A-Z])\b" (seats, gates, rooms:
    # 14C, B12), in that order, each written after its first character, which the look-behinds name:
    ("id", re.compile(r"[#A-Z\d](?:(?<=#)\w*\d\w*"
                      r"|(?<=[0-9])(?<!\w[0-9])(?=[A-Z0-9-]*[A-Z])[A-Z0-9-]{2,}[A-Z0-9]\b"
                      r"|(?<=[A-Z])(?<!\w[A-Z])(?=[A-Z0-9-]*\d)[A-Z0-9-]{2,}[A-Z0-9]\b"
                      r"|(?<=\d)(?<!\w\d)\d{4,}\b"
                      r"|(?<=[A-Z])(?<!\w[A-Z])\d{1,3}\b"
                      r"|(?<=\d)(?<!\w\d)\d{0,2}[A-Z]\b)")),
    # "(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\w)|(?<![\w.])\d+(?:\.\d+)?(?![\w%])":
    ("number", re.compile(r"\d(?<![\w.]\d)(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?(?!\w)|\d*(?:\.\d+)?(?![\w%]))")),
    ("status", re.compile(r"\b(?:" + "|".join(re.escape(s) for s in STATUSES) + r")\b", re.I)),
]
# The two month dates for a text with no weekday in it (the weekday group cannot match: what is left
# starts with a month's or a day's first character, and is looked for only where one is). The month
# by its first letter, its forms in the same order; the boundary before it is checked on each match.
_MONTH_BY_LETTER = (r"(?:J(?:an(?:uary)?|une?|uly?)|Feb(?:ruary)?|M(?:ar(?:ch)?|ay)|A(?:pr(?:il)?|ug(?:ust)?)"
                    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_MONTH_DAY = re.compile(r"(?P<mon>" + _MONTH_BY_LETTER + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b"
                        r"(?:,?\s+(?P<y>\d{4}))?")
_DAY_MONTH = re.compile(r"(?P<d>\d(?<!\w\d)\d?)(?:st|nd|rd|th)?\s+(?P<mon>" + _MONTH_RE + r")\b"
                        r"(?:,?\s+(?P<y>\d{4}))?")
_WEEKDAY_HEADS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _month_days(text: str):
    """``_PATTERNS[2]``'s matches in a text with no weekday: those of ``_MONTH_DAY`` that start a word
    (none could start inside one that does not: a month's first letter is its only capital)."""
    for m in _MONTH_DAY.finditer(text):
        s = m.start()
        if s == 0 or not (text[s - 1].isalnum() or text[s - 1] == "_"):
            yield m


# Statuses are searched for in the lower-cased text, case-sensitively: an alternation of words under
# re.I with a leading \b costs several times more per character. Word bounds are checked on the match.
_STATUS_LOWER = re.compile("|".join(re.escape(s) for s in sorted(STATUSES, key=len, reverse=True)))
_DIGIT = re.compile(r"\d")
_MONTH_HEADS = tuple(m[:3] for m in MONTHS)
_MONTH_CAPS = tuple(m.capitalize() for m in _MONTH_HEADS)


def _currency_words(text: str, low: str) -> bool:
    """A currency may be named in words (re.I also reads "ſ" as an "s")."""
    return any(w in low for w in _CURRENCY_WORDS) or "ſ" in text


def _gates(text: str, low: str) -> dict[int, bool]:
    """Which patterns can match at all, from checks that cost a substring search each: most of the
    patterns need a digit, a currency sign, a month name, a colon or a percent sign."""
    digit = _DIGIT.search(text) is not None
    # (a month is written capitalised: the date patterns read no other case)
    month = digit and any(m in text for m in _MONTH_CAPS)
    return {
        0: digit and (any(c in text for c in "$€£") or _currency_words(text, low)),
        1: digit and "-" in text,
        2: month,
        3: month,
        4: digit and ":" in text,
        5: digit and ("m" in low and any(x in low for x in ("am", "pm", "a.m", "p.m"))),
        6: digit and "%" in text,
        7: digit or "#" in text,
        8: digit,
    }


def _status_matches(text: str, low: str):
    """The status pattern's matches, found in the lower-cased text (same offsets when its length is)."""
    if len(low) != len(text):
        yield from _PATTERNS[-1][1].finditer(text)
        return
    n = len(text)
    for m in _STATUS_LOWER.finditer(low):
        s, e = m.span()
        if (s and (low[s - 1].isalnum() or low[s - 1] == "_")) or (e < n and (low[e].isalnum() or low[e] == "_")):
            continue
        yield _PATTERNS[-1][1].match(text, s, e)
# "not shipped", "hasn't been delivered", "never arrived" ("n't" ends a word: no \b before it)
_NEGATION = re.compile(r"(?:\b(?:not|never|no longer)|n't)\s+(?:\w+\s+)?$", re.I)


@dataclass
class Claim:
    kind: str
    text: str
    start: int
    end: int
    value: Any
    style: dict[str, Any] = field(default_factory=dict)


def _dec(s: str) -> Decimal | None:
    try:
        return Decimal(s.replace(",", ""))
    except InvalidOperation:
        return None


def _parse(kind: str, m: re.Match) -> tuple[Any, dict[str, Any]] | None:
    g = m.groupdict()
    text = m.group(0)
    if kind == "money":
        num = g.get("num") or g.get("num2")
        cur = _CUR.get((g.get("cur") or g.get("cur2") or "$").lower(), "$")
        return _dec(num), {"cur": cur, "decimals": "." in num, "commas": "," in num,
                           "suffix": bool(g.get("cur2")), "word": g.get("cur2")}
    if kind == "date":
        if g.get("mon"):
            month = _MON.get(g["mon"].lower()[:4] if g["mon"].lower().startswith("sept") else g["mon"].lower()[:3])
            year = int(g["y"]) if g.get("y") else None
            value = (year, month, int(g["d"]))
            style = {"fmt": "md" if text.lstrip(", ").split()[0 if not g.get("wd") else 1][0].isalpha() else "dm",
                     "long": len(g["mon"]) > 3, "year": year is not None, "weekday": bool(g.get("wd"))}
            if g.get("wd"):
                style["fmt"] = "md" if re.search(_MONTH_RE + r"\.?\s+\d", text) else "dm"
            return value, style
        return (int(g["y"]), int(g["m"]), int(g["d"])), {"fmt": "iso"}
    if kind == "time":
        h, mi, ap = int(g["h"]), int(g.get("mi") or 0), (g.get("ap") or "").lower().replace(".", "")
        if ap == "pm" and h < 12:
            h += 12
        if ap == "am" and h == 12:
            h = 0
        if h > 23 or mi > 59:
            return None
        return (h, mi), {"ampm": bool(ap), "upper": (g.get("ap") or "").isupper(), "minutes": g.get("mi") is not None}
    if kind in ("percent", "number"):
        return _dec(g.get("num") or text), {"decimals": "." in text, "commas": "," in text}
    if kind == "id":
        return text.lstrip("#").upper(), {"hash": text.startswith("#")}
    if kind == "status":
        return text.lower().replace("canceled", "cancelled"), {"case": "title" if text[:1].isupper() else "lower"}
    return None


def find_claims(text: str, kinds: tuple[str, ...] | None = None) -> list[Claim]:
    """Every checkable value in ``text``, left to right, without overlaps (first kind wins)."""
    if len(text) > 20_000:
        return read_claims(text, kinds)
    return list(_cached_claims(text, kinds))  # the planner and each refiner scan the same draft


@lru_cache(maxsize=512)
def _cached_claims(text: str, kinds: tuple[str, ...] | None) -> tuple[Claim, ...]:
    return tuple(read_claims(text, kinds))


def read_claims(text: str, kinds: tuple[str, ...] | None = None) -> list[Claim]:
    """``find_claims`` without the cache: for text read once (tool results, the dialogue)."""
    taken = bytearray(len(text))  # one mark per character: an overlap test costs the match's length
    out: list[Claim] = []
    low = text.lower()
    gates = _gates(text, low)
    weekday = None  # whether a weekday's name is in the text, when a date pattern asks
    for i, (kind, pattern) in enumerate(_PATTERNS):
        if not gates.get(i, True):
            continue
        if i == 0 and not _currency_words(text, low):
            pattern = _MONEY_BY_SIGN  # the same matches: the other branch needs a currency's name
        if i in (2, 3) and weekday is None:
            weekday = any(w in text for w in _WEEKDAY_HEADS)
        if i == 2 and not weekday:
            found = _month_days(text)
        elif i == 3 and not weekday:
            found = _DAY_MONTH.finditer(text)
        else:
            found = _status_matches(text, low) if kind == "status" else pattern.finditer(text)
        for m in found:
            if m is None:
                continue
            s, e = m.span()
            if 1 in taken[s:e]:
                continue
            parsed = _parse(kind, m)
            if parsed is None or parsed[0] is None:
                continue
            if kind == "status" and _NEGATION.search(text[max(0, s - 25):s]):
                continue  # "has not shipped" is not a claim that it shipped
            taken[s:e] = b"\x01" * (e - s)
            if kinds is None or kind in kinds:
                out.append(Claim(kind, m.group(0), s, e, parsed[0], parsed[1]))
    return sorted(out, key=lambda c: c.start)


def same_value(kind: str, a: Any, b: Any) -> bool:
    if kind == "date":
        (ya, ma, da), (yb, mb, db) = a, b
        return ma == mb and da == db and (ya is None or yb is None or ya == yb)
    return a == b


def comparable(draft_kind: str, fact_kind: str) -> bool:
    """A bare number may state an amount; an amount never states a count."""
    return draft_kind == fact_kind or (draft_kind == "number" and fact_kind == "money")


def render(claim: Claim, value: Any, kind: str) -> str:
    """``value`` written the way ``claim`` was written (currency, date format, 12/24 h ...)."""
    st = claim.style
    if claim.kind == "money":
        dec = Decimal(value)
        decimals = st.get("decimals") or dec != dec.to_integral_value()
        num = f"{dec:,.2f}" if decimals else f"{dec:,.0f}"
        num = num if st.get("commas") else num.replace(",", "")
        return f"{num} {st['word']}" if st.get("suffix") else f"{st['cur']}{num}"
    if claim.kind == "date":
        year, month, day = value
        if st.get("fmt") == "iso":
            return f"{year or claim.value[0]:04d}-{month:02d}-{day:02d}"
        name = MONTHS[month - 1].capitalize()
        name = name if st.get("long", True) else name[:3]
        core = f"{name} {day}" if st.get("fmt") == "md" else f"{day} {name}"
        year = year or claim.value[0]
        if st.get("year") and year:
            core += f", {year}" if st.get("fmt") == "md" else f" {year}"
        if st.get("weekday") and year:
            core = dt.date(year, month, day).strftime("%A") + ", " + core
        return core
    if claim.kind == "time":
        h, mi = value
        if not st.get("ampm"):
            return f"{h:02d}:{mi:02d}" if len(claim.text.split(":")[0]) == 2 else f"{h}:{mi:02d}"
        ap = "pm" if h >= 12 else "am"
        ap = ap.upper() if st.get("upper") else ap
        h12 = h % 12 or 12
        hour = f"{h12:02d}" if claim.text[:1] == "0" else str(h12)  # "06:00 AM" stays zero-padded
        return f"{hour}:{mi:02d} {ap}" if st.get("minutes") or mi else f"{hour} {ap}"
    if claim.kind in ("number", "percent"):
        dec = Decimal(value)
        num = f"{dec:,}" if st.get("commas") else str(dec.normalize() if dec == dec.to_integral_value() else dec)
        if dec == dec.to_integral_value():
            num = f"{int(dec):,}" if st.get("commas") else str(int(dec))
        return num + ("%" if claim.kind == "percent" else "")
    if claim.kind == "id":
        return ("#" if st.get("hash") else "") + str(value)
    if claim.kind == "status":
        text = str(value)
        return text.capitalize() if st.get("case") == "title" else text
    return str(value)


def replace_spans(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Apply (start, end, new) edits right to left so earlier offsets stay valid."""
    for s, e, new in sorted(edits, key=lambda x: x[0], reverse=True):
        text = text[:s] + new + text[e:]
    return text
