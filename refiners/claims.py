"""Checkable values in text — amounts, dates, times, IDs, numbers, statuses — found, normalized,
and written back in the style the text used. No model: this is what the deterministic passes see.

    >>> [c.kind for c in find_claims("Order A1234 ($42.50) ships on March 14.")]
    ['id', 'money', 'date']
"""
from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from itertools import chain
from typing import Any

# The patterns, re-exported: refiners read statuses and month names through this module.
from refiners.claim_patterns import (_CUR, _DAY_MONTH, _MON, _MONEY_BY_SIGN, _MONTH_RE, _NEGATION, _PATTERNS,  # noqa: F401
                                     _WEEKDAY_HEADS, EURO_STYLE, MONTHS, STATUSES, _currency_words, _gates,
                                     _month_days, _status_matches, dotted_dates, money_by_code)

_EURO_STYLE = re.compile(EURO_STYLE)
_EURO_MARKS = str.maketrans(",.", ".,")


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
        num = g.get("num") or g.get("num2") or g.get("num3")
        cur = _CUR.get((g.get("cur") or g.get("cur2") or g.get("cur3") or "$").lower(), "$")
        euro = "," in num and _EURO_STYLE.fullmatch(num) is not None  # "1.234,56": a decimal comma
        point, thousands = (",", ".") if euro else (".", ",")
        return _dec(num.replace(".", "").replace(",", ".") if euro else num), {
            "cur": cur, "decimals": point in num, "commas": thousands in num, "suffix": bool(g.get("cur2")),
            "word": g.get("cur2"), "code": g.get("cur3"), "dash": bool(g.get("dash")), "euro": euro}
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
        if g.get("dd"):  # day.month.year
            day, month = int(g["dd"]), int(g["mm"])
            if not (1 <= month <= 12 and 1 <= day <= 31):
                return None
            return (int(g["yy"]), month, day), {"fmt": "dotted", "pad": (len(g["dd"]) == 2, len(g["mm"]) == 2)}
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
    key = (text, kinds)  # the planner and each refiner scan the same draft: the last 512 are kept
    with _FOUND_LOCK:
        hit = _FOUND.get(key)
        if hit is not None:
            _FOUND.move_to_end(key)
            return list(hit)
    found = tuple(read_claims(text, kinds))
    with _FOUND_LOCK:
        _FOUND[key] = found
        _FOUND.move_to_end(key)
        while len(_FOUND) > FOUND_KEPT:
            _FOUND.popitem(last=False)
    return list(found)


def claims_found(text: str) -> list[Claim] | None:
    """``find_claims(text)`` when it is still kept (a draft checked lately), else None; reads and
    keeps nothing, so a text read once (an earlier reply in the dialogue) evicts no draft."""
    with _FOUND_LOCK:
        hit = _FOUND.get((text, None))
    return None if hit is None else list(hit)


FOUND_KEPT = 512
_FOUND: OrderedDict[tuple[str, tuple[str, ...] | None], tuple[Claim, ...]] = OrderedDict()
_FOUND_LOCK = threading.Lock()  # (a big dialogue's evidence is read in a worker thread)


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
        words = i == 0 and _currency_words(text, low)
        if i == 0 and not words:
            pattern = _MONEY_BY_SIGN  # the same matches: the other branch needs a currency's name
        if i in (2, 3) and weekday is None:
            weekday = any(w in text for w in _WEEKDAY_HEADS)
        if i == 2 and not weekday:
            found = _month_days(text)
        elif i == 3 and not weekday:
            found = _DAY_MONTH.finditer(text)
        elif words:  # and an amount after a currency's code, read apart where a code is written
            more = money_by_code(text)
            found = pattern.finditer(text) if more is None else chain(pattern.finditer(text), more)
        elif i == 1:  # an ISO date, and a dotted one read apart where one is written
            iso = pattern.finditer(text) if "-" in text else ()
            more = dotted_dates(text) if "." in text else None
            found = iso if more is None else chain(iso, more)
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
            out.append(Claim(kind, m.group(0), s, e, parsed[0], parsed[1]))
    out.sort(key=lambda c: c.start)
    if gates[3]:  # a day before a month's name may end a range
        out = _without_range_starts(text, out)
    return out if kinds is None else [c for c in out if c.kind in kinds]


# what joins the first day of a range to its last: "from 3 to 5 December", "14–17 Dec"
_RANGE_TO = re.compile(r"\s*(?:–|—|-|to|until|till|through)\s*")


def _without_range_starts(text: str, out: list[Claim]) -> list[Claim]:
    """The claims without the first day of a day range ("3" of "from 3 to 5 December"): it is a day
    of the date that follows, not a count (read alone, it would be checked against a record's counts)."""
    drop = {j for j in range(len(out) - 1)
            if out[j].kind == "number" and out[j + 1].kind == "date" and out[j + 1].style.get("fmt") == "dm"
            and out[j].value == out[j].value.to_integral_value() and 1 <= out[j].value <= 31
            and "." not in out[j].text and _RANGE_TO.fullmatch(text, out[j].end, out[j + 1].start)}
    return [c for j, c in enumerate(out) if j not in drop] if drop else out


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
        if st.get("euro"):  # separators swapped back: "1.234,56"
            num = num.translate(_EURO_MARKS)
        if st.get("code"):
            return f"{st['code']} {num}" + (".-" if st.get("dash") else "")
        return f"{num} {st['word']}" if st.get("suffix") else f"{st['cur']}{num}"
    if claim.kind == "date":
        year, month, day = value
        if st.get("fmt") == "iso":
            return f"{year or claim.value[0]:04d}-{month:02d}-{day:02d}"
        if st.get("fmt") == "dotted":
            pad_day, pad_month = st["pad"]
            return f"{day:0{1 + pad_day}d}.{month:0{1 + pad_month}d}.{year or claim.value[0]}"
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
