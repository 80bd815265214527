"""What a value of a reply is, besides a restatement of one tool fact: a count worked out from the
record's other counts ("5 days left" of 7 with 2 used), or a thing the record has no field for
("a €15 fee" under a booking that holds no fee). Factuality leaves such a value as written."""
from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Iterable

from refiners.text import STOP, norm

_AFTER = re.compile(r"\s+([A-Za-z]{3,})\b")
# words after a value that say when, not what ("at 9:00 tomorrow", "14:30 CET")
_WHEN = {"today", "tomorrow", "tonight", "yesterday", "morning", "afternoon", "evening", "night", "local", "sharp",
         "cet", "cest", "utc", "gmt"}


def from_counts(value: Any, counts: Iterable[Any]) -> bool:
    """``value`` is the sum or difference of two of ``counts`` (none of them zero)."""
    nums = {c for c in counts if isinstance(c, (int, float, Decimal))}
    return any(a and (value + a in nums or a - value in nums and value or value - a in nums) for a in nums)


def named_as_other(text: str, end: int, facts: Iterable[Any]) -> bool:
    """The noun right after a value (``text[end:]``) names none of ``facts``' keys or record words:
    "a €15 fee" is not the booking's price."""
    m = _AFTER.match(text, end)
    if m is None:
        return False
    word = m.group(1).lower()
    if word in STOP or word in _WHEN:
        return False
    n = norm(word)
    return not any(n in f.key or n in f.record for f in facts)
