"""Checks that need no rule from the operator, only which tools are writes (the pack's ``tools``,
else the write verbs of ``policies.actions.WRITE_VERBS``). Each returns the evidence of a
violation, or None. Their precision on real trajectories is measured by bench/real_actions.py.
"""
from __future__ import annotations

import re
from typing import Any

from inception.actions.facts import Facts
from inception.dialogue import CallRecord
from inception.structural import failure_in
from policies.actions import ActionSettings

_ID_KEY = re.compile(r"(?:^|_)ids?$|[a-z]Ids?$", re.I)
_MIN_ID = 4  # shorter values ("1", "no") say too little to be judged
# A sentence saying an action is done: "I've cancelled", "has been added", "successfully booked".
_DONE = re.compile(
    r"\b(?:i\s+have|i'?ve|we\s+have|we'?ve|has\s+(?:now\s+)?been|have\s+(?:now\s+)?been|(?:was|were|is|are)\s+(?:now\s+)?"
    r"|successfully)\s+(?:successfully\s+)?"
    r"(?:cancel+ed|added|updated|upgraded|downgraded|booked|changed|modified|sent|issued|refunded|processed|transferred"
    r"|scheduled|created|deleted|removed|reserved|paid|submitted|placed|applied|credited)\b", re.I)
_NEGATED = re.compile(r"\b(?:not|n't|never|cannot|unable|once|after|if|when|until|before)\b|\?", re.I)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


def unconfirmed_write(name: str, facts: Facts, settings: ActionSettings, confirmation: re.Pattern[str]) -> str | None:
    """A call the pack marks ``confirm: true`` with no yes in the user's turn right before it."""
    spec = settings.tool(name)
    if spec is None or not spec.confirm:
        return None
    if confirmation.search(facts.last_user):
        return None
    said = " ".join(facts.last_user.split())[:160]
    return f"{name} needs the user's explicit yes; their last turn was: {said!r}" if said else \
        f"{name} needs the user's explicit yes; the user has said nothing yet"


def unknown_id(name: str, args: dict[str, Any], facts: Facts, settings: ActionSettings) -> str | None:
    """An id argument of a write that nobody showed: not said by the user, not in any tool result."""
    if not settings.is_write(name):
        return None
    seen = None
    for path, value in _ids(args, ""):
        if len(value) < _MIN_ID:
            continue
        seen = seen if seen is not None else facts.seen_text()
        if value.lower() not in seen:
            return f"{name} sends {path}={value!r}, which neither the user nor any tool result mentioned"
    return None


def _ids(value: Any, path: str):
    if isinstance(value, dict):
        for k, v in value.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(v, str) and _ID_KEY.search(str(k)):
                yield sub, v.strip()
            elif isinstance(v, list) and _ID_KEY.search(str(k)):
                yield from ((f"{sub}[{i}]", x.strip()) for i, x in enumerate(v) if isinstance(x, str))
            elif isinstance(v, (dict, list)):
                yield from _ids(v, sub)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _ids(v, f"{path}[{i}]")


def repeated_failed_write(name: str, key: tuple[str, str], facts: Facts, settings: ActionSettings) -> str | None:
    """The same write (name and arguments) that already failed in this user turn, sent again."""
    if not settings.is_write(name):
        return None
    for rec in reversed(facts.calls):
        if rec.index < facts.turn_start:
            break
        if rec.result is not None and rec.name == name and rec.key == key and failure_in(rec.result):
            return f"{name} with these arguments already failed in this turn: {' '.join(rec.result.split())[:160]!r}"
    return None


def claimed_action(reply: str, facts: Facts, settings: ActionSettings) -> str | None:
    """A reply that says an action was done while no write succeeded since the user's last turn."""
    claim = next((s.strip() for s in _SENTENCE.findall(reply) if _DONE.search(s) and not _NEGATED.search(s)), None)
    if claim is None:
        return None
    done = [c for c in facts.calls if c.index > facts.turn_start and _succeeded(c) and settings.is_write(c.name)]
    if done:
        return None
    return f"the reply says {claim[:160]!r}, but no write succeeded in this turn"


def _succeeded(rec: CallRecord) -> bool:
    return rec.result is not None and not failure_in(rec.result)
