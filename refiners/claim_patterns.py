"""The patterns ``refiners.claims`` reads values with, and what tells which of them can match a
text at all (a digit, a currency sign, a month's name...), so a text is scanned only by those.

Most patterns start by reading a character class (a digit, a capital, a currency sign), the
boundary before it checked by a look-behind after it: a pattern that starts with a look-around or
``\\b`` is tried at every position of a text, one that starts with a character class only where
that class is.
"""
from __future__ import annotations

import re

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
_CUR = {"$": "$", "€": "€", "£": "£", "usd": "$", "dollars": "$", "eur": "€", "euros": "€", "gbp": "£", "chf": "CHF "}

# An amount: with a decimal comma ("1.234,56", "89,90": two decimals after the comma, read first), or
# in English ("1,234.56", "89.90").
EURO_STYLE = r"\d{1,3}(?:\.\d{3})+,\d{2}(?!\d)|\d+,\d{2}(?!\d|,\d)"
_AMOUNT = EURO_STYLE + r"|\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_BY_SIGN = r"(?P<cur>[$€£])\s?(?P<num>" + _AMOUNT + ")"
# The same forms, their first digit already read: a branch that starts with a digit is looked for by it.
_AMOUNT_REST = r"\d{0,2}(?:\.\d{3})+,\d{2}(?!\d)|\d*,\d{2}(?!\d|,\d)|\d{0,2}(?:,\d{3})+(?:\.\d+)?|\d*(?:\.\d+)?"
# A currency's code before an amount ("EUR 89", "CHF 120.-"), read where a code is written (capitals).
MONEY_BY_CODE = re.compile(r"(?P<cur3>(?:USD|EUR|GBP|CHF)(?<!\w\w{3}))\s?(?P<num3>" + _AMOUNT + r")(?P<dash>\.-)?(?![\d%])")
# A dotted day.month.year ("03.12.2026"), "(?<![\w.])\d{1,2}\.\d{1,2}\.\d{4}(?!\w|\.\d)", read only in a
# text where its cheap tail (".12.2026": a literal first) is found: one more date pattern over every
# text with a full stop and a digit would cost what the ISO one does.
DOTTED_DATE = re.compile(r"(?P<dd>\d(?<![\w.]\d)\d?)\.(?P<mm>\d{1,2})\.(?P<yy>\d{4})(?!\w|\.\d)")
_DOTTED_TAIL = re.compile(r"\.\d{1,2}\.\d{4}")
# Money written only with a sign ("$42.50"), for a text that names no currency in words: a pattern
# that starts with a character class is looked for only where that class is.
_MONEY_BY_SIGN = re.compile(_BY_SIGN, re.I)
_CURRENCY_WORDS = ("usd", "eur", "gbp", "chf", "dollar")

_PATTERNS: list[tuple[str, re.Pattern]] = [
    # an amount before a currency word or sign, thousands separators and all ("1,058.86 USD", not "058.86
    # USD"; "89,90 €"): "(?<![\d,.])" + _AMOUNT, its first digit read first (a code before the amount,
    # "EUR 89", is MONEY_BY_CODE: a branch that starts with a letter is tried at each letter)
    ("money", re.compile(_BY_SIGN + r"|(?P<num2>\d(?<![\d,.]\d)(?:" + _AMOUNT_REST + r"))"
                         r"\s?(?P<cur2>USD|EUR|GBP|CHF|dollars|euros|€)(?!\w)", re.I)),
    # (the boundary before the year is a lookbehind after it: a pattern that starts with a digit is
    # searched for by its first character, one that starts with \b is tried at every position)
    ("date", re.compile(r"(?P<y>\d{4})(?<!\w\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?:\b|(?=T\d))")),
    # (a day is not the hour of a time after it: "23 Dec 08:39" holds no "Dec 08")
    ("date", re.compile(_WEEKDAY_RE + r"\b(?P<mon>" + _MONTH_RE + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?!:\d)"
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
    # "(?<![\w.])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\w)|(?<![\w.])\d+(?:\.\d+)?(?![\w%])", and no piece of a
    # dotted sequence (a version 6.2.1, an address 10.20.4.117: nothing before or after a dot and a digit):
    ("number", re.compile(r"\d(?<![\w.]\d)(?:\d{0,2}(?:,\d{3})+(?:\.\d+)?(?!\w)|\d*(?:\.\d+)?(?![\w%]))(?!\.\d)")),
    ("status", re.compile(r"\b(?:" + "|".join(re.escape(s) for s in STATUSES) + r")\b", re.I)),
]
# The two month dates for a text with no weekday in it (the weekday group cannot match: what is left
# starts with a month's or a day's first character, and is looked for only where one is). The month
# by its first letter, its forms in the same order; the boundary before it is checked on each match.
_MONTH_BY_LETTER = (r"(?:J(?:an(?:uary)?|une?|uly?)|Feb(?:ruary)?|M(?:ar(?:ch)?|ay)|A(?:pr(?:il)?|ug(?:ust)?)"
                    r"|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_MONTH_DAY = re.compile(r"(?P<mon>" + _MONTH_BY_LETTER + r")\.?\s+(?P<d>\d{1,2})(?:st|nd|rd|th)?\b(?!:\d)"
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
    """A currency may be named in words or by a sign after the amount ("89,90 €"; re.I also reads "ſ"
    as an "s")."""
    return any(w in low for w in _CURRENCY_WORDS) or "ſ" in text or "€" in text


def _gates(text: str, low: str) -> dict[int, bool]:
    """Which patterns can match at all, from checks that cost a substring search each: most of the
    patterns need a digit, a currency sign, a month name, a colon or a percent sign."""
    digit = _DIGIT.search(text) is not None
    # (a month is written capitalised: the date patterns read no other case)
    month = digit and any(m in text for m in _MONTH_CAPS)
    return {
        0: digit and (any(c in text for c in "$€£") or _currency_words(text, low)),
        1: digit and ("-" in text or "." in text),
        2: month,
        3: month,
        4: digit and ":" in text,
        5: digit and ("m" in low and any(x in low for x in ("am", "pm", "a.m", "p.m"))),
        6: digit and "%" in text,
        7: digit or "#" in text,
        8: digit,
    }


def money_by_code(text: str):
    """The amounts after a currency's code ("EUR 89"), or None when no code is written."""
    if "EUR" in text or "USD" in text or "GBP" in text or "CHF" in text:
        return MONEY_BY_CODE.finditer(text)
    return None


def dotted_dates(text: str):
    """The dotted dates of a text with a full stop ("03.12.2026"), or None when none can be there."""
    return DOTTED_DATE.finditer(text) if _DOTTED_TAIL.search(text) else None


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
