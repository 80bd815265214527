"""A user's persona profile: what it may hold, how it is read from a request, and how it is
extracted from the dialogue (no model: phrases users actually write) and merged over time.

    >>> extract_profile([UserMessage(content="Call me Dana. I'm vegetarian, reply in French.")])
    {'name': 'Dana', 'language': 'French', 'constraints': ['vegetarian']}
"""
from __future__ import annotations

import re
from typing import Any, Literal

from opentelemetry import trace
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from policies.limits import MAX_DEPTH, too_deep
from policies.messages import UserMessage, text_of
from refiners.message_facts import TextCache

# A valid profile is a few KB: past this, a string is not read at all (and cannot be deep).
MAX_PROFILE_CHARS = 16_384

_Item = Field(max_length=200)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=60)
    language: str | None = Field(None, max_length=30)
    tone: Literal["formal", "casual", "concise", "friendly"] | None = None
    units: Literal["metric", "imperial"] | None = None
    preferences: list[str] = Field(default_factory=list, max_length=20)
    constraints: list[str] = Field(default_factory=list, max_length=20)

    def is_empty(self) -> bool:
        return not self.model_dump(exclude_defaults=True)


def parse_profile(raw: Any, origin: str = "request") -> Profile | None:
    """A valid profile, or None; an invalid one is ignored and recorded as a span event."""
    if raw is None or raw == {}:
        return None
    if isinstance(raw, str):
        raw = _loads(raw)
    try:
        if not isinstance(raw, dict):
            raise ValueError("a profile is a JSON object")
        if too_deep(raw, 3):  # lists of strings at most: anything deeper is not a profile
            raise ValueError("a profile holds values and lists of strings only")
        profile = Profile.model_validate(raw)
        if any(len(x) > 200 for x in profile.preferences + profile.constraints):
            raise ValueError("profile items are at most 200 characters")
        return profile
    except (ValidationError, ValueError) as e:
        trace.get_current_span().add_event("rein.persona.invalid_profile",
                                           {"origin": origin, "error": str(e)[:200]})
        return None


def profile_from_metadata(extra: dict[str, Any]) -> dict[str, Any] | None:
    """``metadata.rein_profile`` (an object, or a JSON string as OpenAI metadata values must be)."""
    metadata = extra.get("metadata")
    if not isinstance(metadata, dict) or "rein_profile" not in metadata:
        return None
    raw = metadata["rein_profile"]
    if isinstance(raw, str):
        text, raw = raw, _loads(raw)
        if raw is None:
            return {"invalid": text[:50]}  # kept so validation can report it
    if isinstance(raw, dict) and too_deep(raw, 3) is None:
        return raw
    return {"invalid": "a profile holds values and lists of strings only"}


def _loads(text: str) -> Any:
    """JSON from a client-given string, or None: orjson stops at its depth limit with an error
    where Python's json raised RecursionError (the proxy refuses past MAX_DEPTH before this)."""
    if len(text) > MAX_PROFILE_CHARS:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return None if too_deep(value, MAX_DEPTH) else value


def merge_profiles(*profiles: dict[str, Any] | None) -> dict[str, Any] | None:
    """Later profiles win on single values; lists are united, oldest first, capped at 20."""
    out: dict[str, Any] = {}
    for p in profiles:
        for key, value in (p or {}).items():
            if isinstance(value, list):
                merged = list(dict.fromkeys([*out.get(key, []), *value]))
                out[key] = merged[-20:]
            elif value is not None:
                out[key] = value
    return out or None


_LANGS = ("English|French|Spanish|German|Italian|Portuguese|Dutch|Polish|Japanese|Chinese|Korean|Arabic|"
          "Hindi|Turkish|Swedish|Russian|Ukrainian|Greek")
_RULES: list[tuple[str, re.Pattern]] = [
    ("name", re.compile(r"\b(?i:my name is|call me|this is)\s+([A-Z][a-z]{1,30})\b")),
    ("language", re.compile(r"\b(?:reply|respond|answer|write|talk)(?: to me)? (?:only )?in (" + _LANGS + r")\b", re.I)),
    ("language", re.compile(r"\bI (?:only )?speak (" + _LANGS + r")\b", re.I)),
    ("units", re.compile(r"\b(metric|imperial)(?: units)?\b", re.I)),
    ("tone", re.compile(r"\b(?:be|keep it|keep answers|keep replies)\s+(brief|short|concise|formal|casual)\b", re.I)),
    ("constraints", re.compile(r"\bI(?:'m| am)\s+((?:a )?(?:vegetarian|vegan|pescatarian|diabetic|lactose[- ]intolerant|"
                               r"allergic to [a-z ]{2,30}?|gluten[- ]free|wheelchair user))\b", re.I)),
    ("constraints", re.compile(r"\bI (?:can(?:no|')t|do(?:n't| not)|won't|never) ((?:eat|fly|drink|take|travel|"
                               r"use|want) [a-z0-9 ,'-]{2,40}?)(?=[.!?;]|$)", re.I | re.M)),
    ("constraints", re.compile(r"\b((?:my budget is|budget of|no more than|at most|under)\s+[$€£]\s?\d[\d,]*)", re.I)),
    ("constraints", re.compile(r"\b(no (?:flights?|meetings?|calls?|deliver(?:y|ies)) (?:before|after) [0-9apm: ]{1,8})", re.I)),
    ("preferences", re.compile(r"\bI (?:prefer|like|love|want) ((?:a |an |the )?[a-z][a-z0-9 '-]{2,40}?)(?=[.!?;,]|$)", re.I | re.M)),
]


# Bounded reading: profile extraction runs on every turn (planner, persona store), so it reads the
# newest user messages first and stops at a budget; self-descriptions are short and come early in
# a message ("Hi, I'm Dana, ..."), so a long message is read from its start.
READ_CHARS = 16_000     # of the whole dialogue's user messages
MESSAGE_CHARS = 4_000   # of one user message


def user_texts(messages: list[Any], budget: int = READ_CHARS) -> tuple[list[str], int]:
    """The user's texts to read, oldest first, taken newest first within ``budget`` characters;
    and how many characters were left unread."""
    texts, skipped = [], 0
    for m in reversed(messages):
        if not isinstance(m, UserMessage):
            continue
        text = text_of(m)
        take = min(len(text), MESSAGE_CHARS, budget)
        texts.append(text[:take])
        skipped += len(text) - take
        budget -= take
    texts.reverse()
    return texts, skipped


# What each user message says about the user, by its text: a client sends the whole dialogue every
# turn, and the profile is read on every turn, so each message is matched once.
_SAID = TextCache(500_000)


def _said_about_self(text: str) -> tuple[tuple[str, str], ...]:
    """(field, value) of each rule's matches in ``text``, in the order ``extract_profile`` applies them."""
    return _SAID.get((text,), lambda: tuple((field, match.group(1).strip()) for field, pattern in _RULES
                                            for match in pattern.finditer(text)))


def extract_profile(messages: list[Any], notes: list[str] | None = None) -> dict[str, Any]:
    """What the user said about themselves, as a partial profile (later statements win). Reads the
    newest user messages first, within a budget; what it left unread goes in ``notes``."""
    texts, skipped = user_texts(messages)
    if skipped and notes is not None:
        notes.append(f"persona: read {sum(map(len, texts))} characters of the user's messages for a profile, "
                     f"skipped {skipped} (oldest first, and past {MESSAGE_CHARS} in one message)")
    out: dict[str, Any] = {}
    for text in texts:
        for field, value in _said_about_self(text):
            if field == "units":
                out["units"] = value.lower()
            elif field == "tone":
                out["tone"] = {"brief": "concise", "short": "concise"}.get(value.lower(), value.lower())
            elif field == "language":
                out["language"] = value.capitalize()
            elif field == "name":
                out["name"] = value
            else:
                items = out.setdefault(field, [])
                if value.lower() not in (i.lower() for i in items):
                    items.append(value[:200])
    return out
