"""Records that share an id (two transfers to one IBAN, one gift card in a reservation and in a
wallet): which one a sentence is about, told by what else of it the sentence quotes. Factuality
checks a value only against that record; when nothing or more than one is quoted, against all of
them, as before (and a value several facts could be is left alone).
"""
from __future__ import annotations

import re

from refiners.claims import Claim, read_claims
from refiners.evidence import Evidence, Fact, words

# What may tell one record from another in a sentence: its values of these kinds (a list item's
# number or a count is no sign of which record is meant).
_QUOTES = ("money", "date", "time")
# The side of a record an id is on, from the word right before it: "from GB29..." names the record
# whose sender (origin, payer) it is; "to GB29..." the one whose recipient (destination) it is.
_SIDE = re.compile(r"\b(from|to)\b")
_SIDE_KEYS = {"from": frozenset({"from", "sender", "source", "origin", "payer", "debtor", "author"}),
              "to": frozenset({"to", "recipient", "receiver", "destination", "payee", "beneficiary", "creditor"})}


def _sides(low: str, upper: str, entities: list[str]) -> list[tuple[str, frozenset[str]]]:
    """(id, the keys its side may sit under) for each id the sentence puts after "from" or "to"."""
    out = []
    for entity in entities:
        at = upper.find(entity)
        if at < 0:
            continue
        words = _SIDE.findall(low, max(0, at - 30), at)
        if words:
            out.append((entity, _SIDE_KEYS[words[-1]]))
    return out


_READ: dict[str, list[Claim]] = {}  # sentence -> its values of _QUOTES kinds: a sentence holds several values


def _quotes(sentence: str) -> list[Claim]:
    found = _READ.get(sentence)
    if found is None:
        if len(_READ) >= 256:
            _READ.clear()
        found = _READ[sentence] = [c for c in read_claims(sentence) if c.kind in _QUOTES]
    return found


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"  # "gift_card" inside "gift_card_8190333" is part of an id


def spans(low: str, texts: tuple[str, ...]) -> list[tuple[int, int]]:
    """Where ``low`` holds each of ``texts`` as words of its own (not inside a longer word)."""
    out = []
    for text in texts:
        at = low.find(text)
        while at >= 0:
            end = at + len(text)
            if (at == 0 or not _word_char(low[at - 1])) and (end == len(low) or not _word_char(low[end])):
                out.append((at, end))
            at = low.find(text, at + 1)
    return out


def quoted_record(ev: Evidence, text: str, cands: list[Fact], claim: Claim, bounds: tuple[int, int],
                  entities: list[str]) -> list[Fact]:
    """Of several records holding the id the sentence ``text[s:e]`` names (two transfers to one
    IBAN), the facts of the one the sentence also quotes: another of its amounts, dates or times,
    one of its text fields ("New year gift"), or the side the id is on ("from GB29..." names the
    record whose sender it is). Only when exactly one record is quoted; else ``cands`` as they were."""
    s, e = bounds
    sentence = text[s:e]
    low = sentence.lower()
    others = [c for c in _quotes(sentence) if c.start + s != claim.start]
    sides = _sides(low, sentence.upper(), entities)
    said = words(sentence) if sides else set()
    rows = ev.index.rows
    of_row: dict[tuple[int, int], list[Fact]] = {}
    for f in ev.about(entities):
        of_row.setdefault((f.turn, f.row), []).append(f)
    quoted = set()
    for key in {(f.turn, f.row) for f in cands}:
        row, facts = rows.get(key), of_row.get(key, [])
        if row is None:
            continue
        # A side names a record only in a sentence about that kind of record (its keys' or its
        # tool's words): "the transaction from GB29..." is one; "I will send £188 to GB29..." is none.
        if any(ev.holds(facts, o) for o in others) or spans(low, row.texts) \
                or any(side & (row.roles or {}).get(entity, frozenset()) for entity, side in sides) \
                and any(said & f.record for f in facts):
            quoted.add(key)
    return [f for f in cands if (f.turn, f.row) in quoted] if len(quoted) == 1 else cands
