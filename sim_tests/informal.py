"""The ``informal`` trait's text transform: lower case, abbreviations, dropped punctuation and
seeded typos, applied to what a user writes.

Ids, stop tokens and the facts the user quotes (an address, a flight number) are left exactly as
they were: a person types their new address the way it is written on the envelope, and a typo
in an order id is a different failure (a wrong id), not a style. Example::

    informal("Hi, I'm u_ava. Please cancel order R1002.", random.Random(1))
    # 'hi im u_ava pls cancel order R1002'   (with some seeds a typo lands on a word)
"""
from __future__ import annotations

import random
import re
from typing import Iterable

ABBREVIATIONS = {
    "please": "pls", "you": "u", "your": "ur", "thanks": "thx", "thank you": "ty", "because": "bc",
    "i'm": "im", "i am": "im", "don't": "dont", "can't": "cant", "it's": "its", "that's": "thats",
    "okay": "ok", "really": "rly", "about": "abt", "tomorrow": "tmrw", "going to": "gonna", "want to": "wanna",
}
_ABBREV = re.compile(r"\b(" + "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True)) + r")\b")
# Kept verbatim: stop tokens and id-like tokens (a digit or an underscore in them).
_FIXED = r"###[A-Z-]+###|\b\w*[\d_]\w*\b"
_DROPPED = re.compile(r"[.,!;:]+(?=\s|$)|(?<=\s)-(?=\s)")
TYPO_RATE = 0.15   # chance that an eligible word gets a typo
MAX_TYPOS = 2      # per message: a person mistypes a word or two, not every word


def _typo(word: str, rng: random.Random) -> str:
    """Swap two inner letters or drop one (the two commonest slips of a typing hand)."""
    i = rng.randrange(1, len(word) - 2)
    if rng.random() < 0.5:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    return word[:i] + word[i + 1:]


def _loosen(text: str, rng: random.Random, budget: list[int]) -> str:
    text = _ABBREV.sub(lambda m: ABBREVIATIONS[m.group(1)], text.lower())
    text = _DROPPED.sub("", text)

    def maybe_typo(m: re.Match) -> str:
        word = m.group(0)
        if budget[0] > 0 and rng.random() < TYPO_RATE:
            budget[0] -= 1
            return _typo(word, rng)
        return word
    return re.sub(r"\b[a-z]{5,}\b", maybe_typo, text)


def informal(text: str, rng: random.Random, keep: Iterable[str] = ()) -> str:
    """``text`` as a hurried person types it; the strings in ``keep`` stay exactly as they are."""
    values = sorted({k for k in keep if k and k.strip()}, key=len, reverse=True)
    fixed = re.compile("|".join([*(re.escape(v) for v in values), _FIXED]))
    out, at, budget = [], 0, [MAX_TYPOS]
    for m in fixed.finditer(text):
        out.append(_loosen(text[at:m.start()], rng, budget))
        out.append(m.group(0))
        at = m.end()
    out.append(_loosen(text[at:], rng, budget))
    return re.sub(r"\s{2,}", " ", "".join(out)).strip()
