"""Persona: align the reply with the user's profile. Deterministic fixes for what needs no model
(units, the user's name in a greeting, a formal register); the model for constraints,
preferences, language and brevity, and only when the profile has something the reply touches."""
from __future__ import annotations

import re
from decimal import Decimal

from refiners.base import Check, Revision
from refiners.claims import find_claims, replace_spans
from refiners.evidence import words
from refiners.turn import RefinerTurn, is_profile_empty

_TO_METRIC = [  # pattern, factor (or None for temperature), metric unit
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:miles?|mi)\b"), Decimal("1.609344"), "km"),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:lbs?)\b"), Decimal("0.45359237"), "kg"),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:feet|ft)\b"), Decimal("0.3048"), "m"),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:inch(?:es)?|in\.)(?!\w)"), Decimal("2.54"), "cm"),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:gallons?|gal)\b"), Decimal("3.785411784"), "L"),
    (re.compile(r"(-?\b\d+(?:\.\d+)?)\s?°\s?F\b|(-?\b\d+(?:\.\d+)?)\s?degrees Fahrenheit\b"), None, "°C"),
]
_TO_IMPERIAL = [
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:km|kilomet(?:er|re)s?)\b"), Decimal("0.621371192"), "miles"),
    (re.compile(r"\b(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)\s?(?:kg|kilograms?)\b"), Decimal("2.20462262"), "lb"),
    (re.compile(r"(-?\b\d+(?:\.\d+)?)\s?°\s?C\b|(-?\b\d+(?:\.\d+)?)\s?degrees Celsius\b"), None, "°F"),
]
LAST_USER_CHARS = 4_000  # of the user's last message, read for the topics a profile item may touch
_GREETING = re.compile(r"^((?:Hi|Hello|Dear|Hey|Good (?:morning|afternoon|evening))\s+)([A-Z][a-z]+)\b")
_SLANG = {r"^Hey\b": "Hello", r"\bgonna\b": "going to", r"\bwanna\b": "want to", r"\bgotta\b": "have to",
          r"\bYeah\b": "Yes", r"\byeah\b": "yes", r"\bnope\b": "no"}
_EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF]\ufe0f?\\s?")
_ENGLISH = {"the", "and", "your", "you", "is", "are", "will", "to", "of", "for", "with", "have", "has", "this",
            "it", "on", "in", "be", "was", "a"}
_DIET = {"vegetarian": {"steak", "beef", "chicken", "pork", "bacon", "burger", "lamb", "ham", "sausage",
                        "turkey", "duck", "veal", "fish", "salmon", "tuna", "shrimp", "seafood", "meat"},
         "vegan": {"steak", "beef", "chicken", "pork", "bacon", "burger", "lamb", "ham", "cheese", "egg",
                   "milk", "butter", "fish", "salmon", "shrimp", "meat", "cream", "honey"}}


def _fmt(value: Decimal) -> str:
    rounded = value.quantize(Decimal("1")) if abs(value) >= 20 else value.quantize(Decimal("0.1"))
    text = f"{rounded:,}" if abs(rounded) >= 10000 else format(rounded, "f")
    return text[:-2] if text.endswith(".0") else text


def convert_units(text: str, units: str) -> tuple[str, list[str]]:
    edits, notes = [], []
    for pattern, factor, unit in (_TO_METRIC if units == "metric" else _TO_IMPERIAL):
        for m in pattern.finditer(text):
            number = Decimal((m.group(1) or m.group(2)).replace(",", ""))
            if factor is None:
                value = (number - 32) * 5 / 9 if unit == "°C" else number * 9 / 5 + 32
            else:
                value = number * factor
            new = f"{_fmt(value)} {unit}" if not unit.startswith("°") else f"{_fmt(value)}{unit}"
            edits.append((m.start(), m.end(), new))
            notes.append(f"{m.group(0)} → {new} ({units} units)")
    return replace_spans(text, edits), notes


class PersonaRefiner:
    name = "persona"
    # Its rules read one sentence (and whether it opens the reply); the model, when asked, the whole reply.
    sentence_local = True
    INSTRUCTIONS = ("Check that the reply respects the user's profile: their constraints, preferences, tone "
                    "and language. If it does not, rewrite it so it does, keeping every fact, amount, date and ID.")

    def applies(self, turn: RefinerTurn) -> bool:
        return not is_profile_empty(turn.profile)

    def _deterministic(self, turn: RefinerTurn, text: str) -> tuple[str, list[str]]:
        p = turn.profile
        notes: list[str] = []
        if p.units:
            text, changed = convert_units(text, p.units)
            notes += changed
        if p.name:
            m = _GREETING.match(text)
            if m and m.group(2) != p.name and m.group(2).lower() not in ("there", "again", "all"):
                text = text[:m.start(2)] + p.name + text[m.end(2):]
                notes.append(f"greeted {m.group(2)} → {p.name}")
        if p.tone == "formal":
            before = text
            for pattern, new in _SLANG.items():
                text = re.sub(pattern, new, text)
            text = _EMOJI.sub("", text).rstrip()
            if text != before:
                notes.append("formal register: removed slang and emoji")
        return text, notes

    def _open_issues(self, turn: RefinerTurn, text: str) -> list[str]:
        """What only the model can settle, and only where the reply touches it."""
        p = turn.profile
        issues = []
        draft_words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
        if p.language and p.language.lower() not in ("english", "en") and len(draft_words & _ENGLISH) >= 3:
            issues.append(f"the user reads {p.language}; the reply is in English")
        if p.tone == "concise" and len(text.split()) > 60:
            issues.append("the user asked for brief replies")
        topic = words(text) | words(turn.last_user[-LAST_USER_CHARS:])
        for item in p.constraints + p.preferences:
            lowered = item.lower()
            clash = next((w for key, bad in _DIET.items() if key in lowered for w in bad if w in draft_words), None)
            if clash:
                issues.append(f"'{clash}' conflicts with: {item}")
                continue
            if any(key in lowered for key in _DIET):
                continue  # the word list settled it: nothing on it in the reply
            limit = re.search(r"[$€£]\s?(\d[\d,]*)", item)
            if limit and any(c.kind == "money" and c.value > Decimal(limit.group(1).replace(",", ""))
                             for c in find_claims(text)):
                issues.append(f"an amount exceeds: {item}")
            elif not limit and words(item) & topic - {"want", "like", "prefer", "use"}:
                issues.append(f"check against: {item}")
        return issues

    def check(self, turn: RefinerTurn, text: str) -> Check:
        if not self.applies(turn):
            return Check(skip_reason="no persona known")
        fixed_text, fixed = self._deterministic(turn, text)
        issues = self._open_issues(turn, fixed_text) if turn.llm else []
        if fixed or issues:
            return Check(findings=fixed + issues)
        return Check(skip_reason="the reply touches nothing in the profile")

    async def revise(self, turn: RefinerTurn, text: str) -> Revision:
        calls = turn.budget.calls
        if not self.applies(turn):  # only a fixed chain gets here: the model infers from the dialogue
            if not (turn.thorough and turn.can_consult()):
                return Revision(text=text, feedback="no change: no persona known")
            context = f"User profile: unknown; infer it from the dialogue.\nDialogue so far:\n{turn.dialogue(1200)}"
            text, feedback = await turn.consult("persona", self.INSTRUCTIONS, context, text)
            return Revision(text=text, feedback=feedback, model_calls=turn.budget.calls - calls)
        text, notes = self._deterministic(turn, text)
        issues = self._open_issues(turn, text)
        if turn.can_consult() and (issues or turn.thorough):
            profile = turn.profile.model_dump(exclude_defaults=True) if turn.profile else {}
            context = f"User profile: {profile}\nLast user message: {turn.last_user[-600:]}"
            if issues:
                context += "\nIssues: " + "; ".join(issues)
            text, feedback = await turn.consult("persona", self.INSTRUCTIONS, context, text)
            notes.append(feedback)
        elif issues:
            notes.append("open: " + "; ".join(issues) + " (no model consulted)")
        return Revision(text=text, feedback="; ".join(n for n in notes if n) or "no change: the reply fits the profile",
                        model_calls=turn.budget.calls - calls)
