"""Structural detectors: pure functions over a ``Dialogue``, no model call, microseconds each.

A detector is any object with a ``name`` and ``detect(dialogue) -> list[Detection]``::

    class NoRefunds:
        name = "no_refunds"
        def detect(self, d):
            return [Detection(type="unsupported_request", subtype="unsupported_operation",
                              evidence=d.last_user)] if "refund" in d.last_user else []
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Protocol

import jsonschema
import orjson

from inception.base import Detection
from inception.dialogue import CallRecord, Dialogue
from inception.references import VagueReference


class Detector(Protocol):
    name: str

    def detect(self, dialogue: Dialogue) -> list[Detection]: ...


def _clip(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


# ---- tool_failure -------------------------------------------------------------------------
_ERROR_KEYS = ("error", "errors", "exception", "fault", "error_message", "error_code")
_BAD_STATUS = {"error", "failed", "failure", "fail", "exception", "timeout", "timed_out", "unavailable"}
# A leading word that is an error *label* ("Error: ...", "Exception - ..."), not a word that merely
# starts with it ("Error-Free Gel Pen").
_TEXT_ERROR = re.compile(
    r"^\s*(?:\[?(?:error|exception|fatal|failure|failed)\]?\s*(?::|\s-\s|!|$)"
    r"|(?:failed to|unable to|could not|cannot|can't)\s"
    r"|(?:http\s*)?[45]\d\d\s+[A-Z])"
    r"|traceback \(most recent call last\)|\b(?:timed out|connection refused|internal server error"
    r"|service unavailable|bad gateway)\b", re.I)


def failure_in(content: str) -> bool:
    """True when a tool result reads as an error (structure first, then an error label)."""
    text = content.strip()
    if text[:1] in "{[":
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            return _dict_failed(data)
        if data is not None:
            return False
    return bool(_TEXT_ERROR.search(text))


_WRAPPERS = ("result", "data", "response", "body", "payload")


def _dict_failed(data: dict[str, Any], depth: int = 0) -> bool:
    lowered = {str(k).lower(): v for k, v in data.items()}
    # APIs often wrap their answer: {"result": {"error": ...}}. One level is enough.
    if depth == 0 and any(isinstance(lowered.get(k), dict) and _dict_failed(lowered[k], 1) for k in _WRAPPERS):
        return True
    if any(lowered.get(k) not in (None, False, "", [], {}, 0) for k in _ERROR_KEYS):
        return True
    if lowered.get("ok") is False or lowered.get("success") is False:
        return True
    status = lowered.get("status", lowered.get("state"))
    if isinstance(status, str) and status.lower() in _BAD_STATUS:
        return True
    for key in ("status_code", "statuscode", "http_status"):
        code = lowered.get(key)
        if isinstance(code, int) and code >= 400:
            return True
    return False


class ToolFailure:
    """A tool result in the current turn that is an error, unless a later call to that tool worked."""
    name = "tool_failure"

    def detect(self, d: Dialogue) -> list[Detection]:
        failed: dict[str, CallRecord] = {}
        for rec in d.calls:
            if rec.result is None:
                continue
            if failure_in(rec.result):
                failed[rec.name] = rec
            else:
                failed.pop(rec.name, None)
        return [Detection(type="tool_failure", evidence=f"{r.name} returned: {_clip(r.result or '')}")
                for r in failed.values()]


class ActionLoop:
    """The same call (name and arguments) repeated with the same result: no progress."""
    name = "action_loop"

    def __init__(self, repeats: int = 2):
        self.repeats = repeats

    def detect(self, d: Dialogue) -> list[Detection]:
        if len(d.calls) < self.repeats:  # most turns: nothing to compare, skip canonicalising
            return []
        seen: dict[tuple[str, str], list[CallRecord]] = {}
        for rec in d.calls:
            seen.setdefault(rec.key, []).append(rec)
        out = []
        for recs in seen.values():
            results = {r.result for r in recs if r.result is not None}
            if len(recs) >= self.repeats and len(results) <= 1:
                first = recs[0]
                outcome = "the same result each time" if results else "no result yet"
                out.append(Detection(type="action_loop",
                                     evidence=f"{_clip(first.show(), 100)} called {len(recs)} times, {outcome}"))
        return out


# ---- malformed_tool_call ------------------------------------------------------------------
@lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.protocols.Validator | None:
    schema = json.loads(schema_json)
    try:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
    except jsonschema.SchemaError:
        return None  # the client's schema is broken: nothing to hold the call to
    return cls(schema)


def call_problem(rec: CallRecord, d: Dialogue) -> Detection | None:
    """unknown_tool or schema_violation for one call, or None when it is well formed."""
    if rec.name in d.owned:
        return None
    spec = d.tools.get(rec.name)
    if spec is None and not d.tools:  # no tool list given (common from the SDK): nothing to judge names by
        return None
    if spec is None:
        known = ", ".join(sorted(d.tools)) or "none"
        return Detection(type="malformed_tool_call", subtype="unknown_tool",
                         evidence=f"{_clip(rec.show(), 100)} (tools available: {_clip(known, 120)})")
    schema = orjson.dumps(spec.get("parameters") or {"type": "object"}, option=orjson.OPT_SORT_KEYS).decode()
    said = _violations(schema, rec.call.function.arguments or "{}")
    if said is None:
        return None
    return Detection(type="malformed_tool_call", subtype="schema_violation",
                     evidence=f"{_clip(rec.show(), 100)}: {said}")


@lru_cache(maxsize=2048)
def _violations(schema_json: str, arguments: str) -> str | None:
    """What is wrong with ``arguments`` under the schema, or None. Cached: every request of a tool
    loop re-sends the calls already checked."""
    try:
        args = json.loads(arguments)
    except ValueError:
        return "arguments are not valid JSON"
    validator = _validator(schema_json)
    if validator is None:
        return None
    errors = sorted(validator.iter_errors(args), key=jsonschema.exceptions.relevance)[:3]
    if not errors:
        return None
    return "; ".join(("/".join(map(str, e.absolute_path)) + ": " if e.absolute_path else "") + _clip(e.message, 100)
                     for e in errors)


class MalformedToolCall:
    """The latest tool calls of the current turn (or the draft) name no tool or break its schema."""
    name = "malformed_tool_call"

    def detect(self, d: Dialogue) -> list[Detection]:
        return [p for rec in d.latest_calls() if (p := call_problem(rec, d)) is not None]


def structural_detectors(labels: set[str], loop_repeats: int = 2) -> list[Detector]:
    """The detectors whose error types the policy's taxonomy holds (a pack turns one off by omission)."""
    out: list[Detector] = []
    if "tool_failure" in labels:
        out.append(ToolFailure())
    if "action_loop" in labels:
        out.append(ActionLoop(loop_repeats))
    if labels & {"malformed_tool_call/unknown_tool", "malformed_tool_call/schema_violation", "malformed_tool_call"}:
        out.append(MalformedToolCall())
    if "ambiguous_request/vague_reference" in labels:
        out.append(VagueReference())
    return out
