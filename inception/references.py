"""The vague-reference detector: "cancel it" when the dialogue holds several candidates.

Candidates are identifiers seen before the user's message (order numbers, booking codes),
grouped by shape so a user ID and an order ID are not rivals. The reference is *resolvable*,
and nothing fires, when the user names one, the agent's last message focused on exactly one,
the user picks by position ("the first one"), or a word of the request fits one candidate only.
"""
from __future__ import annotations

import json
import re
from typing import Any

from inception.base import Detection
from inception.dialogue import Dialogue
from policies.messages import AssistantMessage, SystemMessage, DeveloperMessage, text_of

# ORD-1001, W2378156, #W2378156, #40213 (bare numbers only with a '#': prices and zip codes are not IDs)
ID = re.compile(r"(?<![\w-])(?:#?([A-Z]{1,4}-?\d{3,}[A-Z0-9]*)|#(\d{4,}))(?![\w-])")


def ids_in(text: str) -> list[str]:
    return [m.group(1) or m.group(2) for m in ID.finditer(text)]
_VERB = (r"cancel|return|refund|change|modify|update|exchange|delete|remove|track|reschedule|upgrade|book|"
         r"downgrade|ship|reorder|resend|status|where(?:'s| is)|check|pause|renew|move|postpone|fix")
_NOUN = (r"order|item|booking|reservation|package|parcel|ticket|flight|subscription|purchase|"
         r"delivery|shipment|one|account|plan|appointment")
ANAPHOR = re.compile(rf"\b(?:it|that|this|that one|this one|the other one|the ({_NOUN}))\b", re.I)
ACTION = re.compile(rf"\b(?:{_VERB})\b", re.I)
POSITION = re.compile(r"\b(?:first|second|third|last|latest|most recent|newest|oldest|earlier|older|"
                      r"newer|cheaper|cheapest|bigger|smaller|both|all of them|every|each)\b", re.I)
_STOP = set("""about after again also because been before being could does doing from have having
here into just like more most much need only other over please same should some such than that
their them then there these they this those through very want what when where which while with
would your yours order orders item items booking bookings status cancel return change thanks thank
today tomorrow ship shipped shipping delivered pending processing total price""".split())


def _shape(ident: str) -> str:
    return re.sub(r"\d", "9", re.sub(r"[A-Z]", "A", ident))


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", text.lower()) if w not in _STOP}


def _mentions(text: str) -> list[tuple[str, str]]:
    """(identifier, what surrounds it): the smallest JSON object holding it, else nearby text."""
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if data is not None:
            out: list[tuple[str, str]] = []
            _walk(data, out)
            return out
    return [(m.group(1) or m.group(2), text[max(0, m.start() - 60): m.end() + 120]) for m in ID.finditer(text)]


def _walk(node: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        ids = [i for v in node.values() if isinstance(v, str) for i in ids_in(v)]
        if ids:
            flat = json.dumps(node)
            out += [(i, flat) for i in ids]
        for v in node.values():
            if isinstance(v, (dict, list)):
                _walk(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)


class VagueReference:
    name = "vague_reference"

    def detect(self, d: Dialogue) -> list[Detection]:
        request = d.last_user
        if not request or not ACTION.search(request):
            return []
        anaphor = ANAPHOR.search(request)
        if anaphor is None or POSITION.search(request):
            return []
        # Candidates: identifiers in what the user and agent saw before this request.
        groups: dict[str, dict[str, str]] = {}   # shape -> id -> text around it
        for m in d.messages[:d.turn_start]:
            if isinstance(m, (SystemMessage, DeveloperMessage)):
                continue
            for ident, around in _mentions(text_of(m)):
                groups.setdefault(_shape(ident), {}).setdefault(ident, "")
                groups[_shape(ident)][ident] += " " + around
        rivals = {shape: ids for shape, ids in groups.items() if len(ids) >= 2}
        if not rivals:
            return []
        named = set(ids_in(request))
        focus = self._last_agent_ids(d)
        if len(focus) == 1:  # the agent just spoke of one thing: that is what "it" points back to
            return []
        asked = _words(request)
        for shape, ids in rivals.items():
            if named & ids.keys():
                return []
            if len(focus & ids.keys()) == 1:  # the agent's last sentence singled one out
                return []
            # A word of the request that belongs to exactly one candidate's surroundings.
            fitting = [i for i, around in ids.items() if asked & (_words(around) - self._shared(ids))]
            if len(fitting) == 1:
                return []
        shape, ids = max(rivals.items(), key=lambda kv: len(kv[1]))
        listed = ", ".join(sorted(ids)[:6])
        return [Detection(type="ambiguous_request", subtype="vague_reference",
                          evidence=f'"{anaphor.group(0)}" in "{request.strip()[:120]}" could be any of {listed}')]

    @staticmethod
    def _shared(ids: dict[str, str]) -> set[str]:
        """Words around every candidate say nothing about which one is meant."""
        sets = [_words(t) for t in ids.values()]
        return set.intersection(*sets) if sets else set()

    @staticmethod
    def _last_agent_ids(d: Dialogue) -> set[str]:
        """IDs in the agent's last message; when it names several, those of its last sentence
        (what the agent ended on is what "that one" points back to)."""
        for m in reversed(d.messages[:d.turn_start]):
            text = text_of(m).strip() if isinstance(m, AssistantMessage) else ""
            if text:
                ids = set(ids_in(text))
                if len(ids) > 1:
                    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
                    return set(ids_in(sentences[-1])) if sentences else ids
                return ids
        return set()
