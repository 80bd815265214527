"""Is a value in a reply *asserted*? Only then can it contradict a fact.

A value is not stated as true when the sentence asks about it, puts it under a condition, negates
it, quotes someone (the user's own words), or explains what a status or a rule means ("it is
pending, which means it hasn't been delivered yet"); nor when it is part of an identifier ("Visa
ending in 1234", "order #1234"). Such a value is left as written. The reading is the sentence's
own words, bounded and linear: a few dozen characters around the value, and the sentence's ends.

    >>> text = "It is pending, which means it hasn't been delivered yet."
    >>> unasserted(text, text.index("delivered"), text.index("delivered") + 9, 0, len(text) - 1)
    'an explanation of what something means'
    >>> text = "Your Visa ending in 4421 was charged $54.20."
    >>> unasserted(text, 20, 24, 0, len(text) - 1)
    'part of an identifier'
    >>> unasserted(text, 37, 43, 0, len(text) - 1) is None
    True
"""
from __future__ import annotations

import re

# The clause a value sits in starts after the last of these before it.
_CLAUSE_START = re.compile(r"[,;:(—–]|\s-\s|\b(?:and|but|so|because|since|although|though|while|whereas)\b", re.I)
_CONDITION = re.compile(r"\b(?:if|unless|whether|in case|assuming|suppose|supposing|provided(?: that)?|"
                        r"as long as|once|should you|would you|do you want|would it)\b", re.I)
_NEGATION = re.compile(r"(?:\b(?:not|never|no|nor|neither|without|cannot|no longer)\b|n't\b)", re.I)
_EXPLAINS = re.compile(r"\b(?:which|that|this|it)\s+means\b|\bmeaning\b|\bi\.e\.|\bthat is(?: to say)?,|"
                       r"\bin other words\b|\brefers to\b|\bstands for\b|\bdefined as\b", re.I)
_REPORTED = re.compile(r"\b(?:you|the user|customer)\s+(?:said|mentioned|asked|wrote|stated|told|requested|"
                       r"indicated|noted|specified|provided)\b|\baccording to you\b", re.I)
# A number that is part of an identifier: the digits of a card, an order or a phone number.
_ID_LEAD = re.compile(r"(?:(?:\bending(?:\s+(?:in|with))?|\bends?\s+(?:in|with)|\blast\s+(?:four|4|two|2)"
                      r"(?:\s+digits)?(?:\s+of)?|#|\bno\.?|\bnumber|\bnum\.?|\bid|\bext\.?|\bcode)\s*:?\s*"
                      r"|[xX*•·]{4}[\s-]?)$", re.I)   # the last: masked digits ("**** 1234"), not Markdown bold
_QUOTES = ('"', "“", "”", "«", "»")
NEAR = 80   # characters of the clause read before a value


def unasserted(text: str, start: int, end: int, s: int, e: int) -> str | None:
    """Why the value at ``text[start:end]`` (in the sentence ``text[s:e]``) is not stated as true, or
    None when it is. ``e`` is where the sentence ends (its final mark, if any, at ``text[e]``)."""
    before = text[max(s, start - NEAR):start]
    if _ID_LEAD.search(before[-24:]):
        return "part of an identifier"
    if text[e:e + 1] == "?" or text[max(s, e - 1):e + 1].rstrip()[-1:] == "?":
        return "a question"
    if sum(before.count(q) for q in _QUOTES) % 2 == 1:
        return "inside a quotation"
    sentence_head = text[max(s, start - 2 * NEAR):start]
    head = _Words(sentence_head)
    if head.may(_EXPLAINS_KEYS) and _EXPLAINS.search(sentence_head):
        return "an explanation of what something means"
    if head.may(_REPORTED_KEYS) and _REPORTED.search(sentence_head):
        return "the user's words, reported"
    if head.may(_CONDITION_KEYS) and _CONDITION.search(sentence_head):
        return "under a condition"
    if not _Words(before).may(_NEGATION_KEYS):
        return None  # (the clause is the end of ``before``: no negation there either)
    cut = 0
    for m in _CLAUSE_START.finditer(before):
        cut = m.end()
    if _NEGATION.search(before[cut:]):
        return "negated"
    return None


def _keys(*words: str) -> re.Pattern:
    return re.compile("|".join(map(re.escape, words)))  # (plain words: looked for by their first letters)


# What each pattern above cannot match without, lower-cased: an ASCII text that holds none of them
# is not searched (a regex under re.I with a leading \b is tried at every position). A text with
# other characters is always searched (re.I also reads a few of them as ASCII letters).
_EXPLAINS_KEYS = _keys("mean", "i.e.", "that is", "in other words", "refers to", "stands for", "defined as")
_REPORTED_KEYS = _keys("said", "mentioned", "asked", "wrote", "stated", "told", "requested", "indicated", "noted",
                       "specified", "provided", "according to you")
_CONDITION_KEYS = _keys("if", "unless", "whether", "in case", "assum", "suppos", "provided", "as long as", "once",
                        "should you", "would you", "do you want", "would it")
_NEGATION_KEYS = _keys("no", "never", "neither", "without", "n't")  # (not, nor, cannot and no longer hold "no")


class _Words:
    """A short text, lower-cased once, asked whether a pattern's words may be in it."""
    __slots__ = ("low",)

    def __init__(self, text: str):
        self.low = text.lower() if text.isascii() else None

    def may(self, keys: re.Pattern) -> bool:
        return self.low is None or keys.search(self.low) is not None
