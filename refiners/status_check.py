"""A status a reply says a record has ("A1234 is shipped") against the one status the record's own
fields give: a finding only when the record is the sentence's subject and the statuses exclude
each other ("not shipped" contradicts "shipped" only)."""
from __future__ import annotations

import re
from typing import Any, Callable

from refiners.claims import STATUSES, Claim, render
from refiners.evidence import FACT_SOURCES

# "A1234 is shipped", "has been delivered", "status: pending" — the status is said of the record.
_STATUS_BOUND = re.compile(r"(?:\b(?:is|was|are|were|has|have|had|been|now|currently|still|marked(?: as)?|"
                           r"shows?(?: as)?|status(?: is)?)\s*:?\s*)$", re.I)
# The statuses a record's status may be corrected to (one spelling of each).
_KNOWN_STATUSES = frozenset(s.replace("canceled", "cancelled") for s in STATUSES)


def status_finding(text: str, ev: Any, claim: Claim, s: int, entities: list[str],
                   entities_of: Callable[[str], list[str]]) -> tuple[Any, str] | None:
    """(the fact, the status written as the reply writes it) when the claim, in the sentence of
    ``text`` starting at ``s`` that names ``entities``, contradicts it; else None. ``ev``: the
    evidence; ``entities_of``: the records a piece of text names (the checker's, kept per text)."""
    before = text[max(s, claim.start - 40):claim.start]
    if len(entities) != 1 or not _STATUS_BOUND.search(before):
        return None
    if not entities_of(text[s:claim.start]):
        return None  # the record must be the subject, named before the status word
    own = [f for f in ev.about(entities) if f.kind == "status" and f.own and "status" in f.key
           and f.source in FACT_SOURCES and f.entities[:1] == (entities[0],)]
    values = {f.value for f in own}
    if len(values) != 1:
        return None
    fact = own[-1]
    if fact.value == claim.value or fact.value not in _KNOWN_STATUSES:
        return None
    if claim.value.startswith("not ") and fact.value != claim.value[4:]:
        return None  # "not shipped" contradicts "shipped" only ("pending" is not shipped either)
    return fact, render(claim, fact.value, "status")

