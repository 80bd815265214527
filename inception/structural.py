"""Structural detectors: pure functions over a ``Dialogue``, no model call, microseconds each.

See ``Detector`` for writing your own."""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Protocol

import jsonschema
import orjson

from inception.base import Detection
from inception.dialogue import CallRecord, Dialogue, clip as _clip
from inception.injection import UntrustedInstruction
from inception.references import VagueReference
from inception.tool_results import failure_in


class Detector(Protocol):
    """Reads a ``Dialogue`` (``last_user``, ``calls``, ``tools`` ...) and returns what it found.

    A custom one goes to ``Rein(..., detectors=[NoRefunds()])`` or a policy's ``plugins:`` and runs
    after the built-in ones. It says what it reports: ``emits`` (labels of the policy's taxonomy)
    and/or ``taxonomy`` (the entries it brings, with their recovery plan); anything else is refused
    when the stages are built. A found error plants its entry's plan and shows in ``x-rein-diagnosis``:

    >>> import asyncio
    >>> from policies.messages import UserMessage
    >>> from policies.schema import Policy
    >>> import inception
    >>> class NoRefunds:
    ...     name = "no_refunds"
    ...     taxonomy = [{"type": "refund_request", "plan": "Refunds go through the web form: say so."}]
    ...     def detect(self, d):
    ...         return [Detection(type="refund_request", evidence=d.last_user)] if "refund" in d.last_user else []
    >>> cascade = inception.build(Policy(name="p"), detectors=[NoRefunds()])
    >>> diagnosis = asyncio.run(cascade.diagnose([UserMessage(content="I want a refund")], None))
    >>> diagnosis.header(), diagnosis.plan
    ('refund_request', 'Refunds go through the web form: say so.')
    """
    name: str

    def detect(self, dialogue: Dialogue) -> list[Detection]: ...


# ---- tool_failure: whether a result is an error is read in inception/tool_results.py
class ToolFailure:
    """A tool result in the current turn that is an error, unless a later result of that tool
    (by name) in the turn is not. Results are paired to calls by ``Dialogue`` (id, then position)."""
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
    """The agent is stuck: the latest calls of the current turn are one call (same name and
    canonical arguments) made ``repeats`` or more times in a row, each answered with the same
    result (a pending draft counts as a repeat).

    Only the tail of the turn counts, so the flag lasts only while the loop does: once the agent
    makes any other call (other arguments, another tool), or the same call gets a new result,
    the repeated calls are no longer the latest thing it did and nothing is reported.
    """
    name = "action_loop"

    def __init__(self, repeats: int = 2):
        self.repeats = repeats

    def detect(self, d: Dialogue) -> list[Detection]:
        calls = d.calls
        if len(calls) < self.repeats:  # most turns: nothing to compare, skip canonicalising
            return []
        last = calls[-1]
        key, result, run = last.key, last.result, 1
        for rec in reversed(calls[:-1]):
            if rec.key != key or (rec.result is not None and result is not None and rec.result != result):
                break
            result = result if result is not None else rec.result
            run += 1
        if run < self.repeats:
            return []
        outcome = "the same result each time" if result is not None else "no result yet"
        return [Detection(type="action_loop", evidence=f"{_clip(last.show(), 100)} called {run} times in a row, {outcome}")]


# ---- malformed_tool_call ------------------------------------------------------------------
@lru_cache(maxsize=512)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    """The schema's validator, built without checking the schema first: a check against the
    meta-schema costs 0.2-2 ms a tool (6 ms the first in a process), and only a call that breaks
    the schema needs to know the schema is valid (``_schema_ok``)."""
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


@lru_cache(maxsize=512)
def _schema_ok(schema_json: str) -> bool:
    schema = json.loads(schema_json)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError:
        return False  # the client's schema is broken: nothing to hold the call to
    return True


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
    try:
        errors = sorted(_validator(schema_json).iter_errors(args), key=jsonschema.exceptions.relevance)[:3]
    except Exception:
        if not _schema_ok(schema_json):
            return None  # a broken schema can fail to validate anything: it holds no call
        raise
    if not errors or not _schema_ok(schema_json):
        return None  # no error, or errors of a schema nothing is held to
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
    if "untrusted_instruction" in labels:  # first: its plan outranks the others' (MAX_PLANS)
        out.append(UntrustedInstruction())
    if "tool_failure" in labels:
        out.append(ToolFailure())
    if "action_loop" in labels:
        out.append(ActionLoop(loop_repeats))
    if labels & {"malformed_tool_call/unknown_tool", "malformed_tool_call/schema_violation", "malformed_tool_call"}:
        out.append(MalformedToolCall())
    if "ambiguous_request/vague_reference" in labels:
        out.append(VagueReference())
    return out
