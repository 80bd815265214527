"""Structural detectors: pure functions over a ``Dialogue``, no model call, microseconds each.

See ``Detector`` for writing your own."""
from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Protocol

import jsonschema
import orjson

from inception.base import Detection
from inception.dialogue import CallRecord, Dialogue, clip as _clip
from inception.injection import UntrustedInstruction
from inception.memo import TextMemo
from inception.references import VagueReference


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


# ---- tool_failure -------------------------------------------------------------------------
# Only the top of a result speaks for the call: its first line of prose, or the top-level JSON
# object and the wrappers APIs put around an answer. Records inside it (a payment whose status is
# "failed", a cancelled reservation in a list) are data the call returned, so they are never read.
_ERROR_KEYS = ("error", "errors", "exception", "fault", "error_message", "error_code")
_BAD_STATUS = {"error", "failed", "failure", "fail", "exception", "timeout", "timed_out", "unavailable"}
_CODE_KEYS = ("status", "status_code", "statuscode", "http_status", "code")
_WRAPPERS = ("result", "data", "response", "body", "payload", "status")
_MESSAGE_KEYS = ("message", "msg", "detail")
_EMPTY_TEXT = {"", "none", "null", "nil", "false", "0", "ok", "n/a"}  # "error": "none" says no error
# Ids that name the call itself, not an entity: an object holding only these is still an envelope.
_CALL_IDS = {"request_id", "requestid", "trace_id", "traceid", "correlation_id", "span_id"}
_MAX_DEPTH = 4      # wrappers read: {"response": {"body": {"result": {"error": ...}}}}
_FIRST_LINE = 300   # prose is judged by its head; a 200 KB text costs the same as a short one

_HTTP_REASON = (r"bad\s+request|unauthori[sz]ed|forbidden|not\s+found|method\s+not\s+allowed|conflict"
                r"|request\s+timeout|unprocessable\s+entity|too\s+many\s+requests|internal\s+server\s+error"
                r"|not\s+implemented|bad\s+gateway|service\s+unavailable|gateway\s+time-?out")
# Each branch is anchored at the start of the first line: an error *label* ("Error: ...",
# "[ERROR]", "KeyError: ..."), not a word that merely starts with it ("Error-Free Gel Pen").
_PROSE_ERROR = re.compile(
    r"\s*(?:(?:error|err|exception|fatal|failure|failed|timeout)\s*(?::|\s-\s|!|$)"
    r"|\[(?:error|err|exception|fatal|failure|failed|timeout)\]"
    r"|(?-i:(?:[a-z_]\w*\.)*[A-Z][\w.]*(?:Error|Exception|Timeout))\s*(?::|$)"  # java.lang.X, requests.exceptions.X
    r"|(?:an?\s+)?(?:(?:unexpected|unknown|internal|fatal|server|system)\s+)?error\s+(?:\d{3}\b|(?:has\s+)?occurred|while\b|when\b|during\b)"
    r"|(?:error|err|fatal)\s+(?!(?:0x)?0+\s*:)(?=[\w.-]*?\d)[\w.-]++\s*:"  # "ERROR 0x80070005: ...", "Error E1234: ..." (code 0: success)
    r"|(?:failed\s+to|unable\s+to|could\s+not|couldn't|cannot|can't)\s"
    r"|traceback\s+\(most\s+recent\s+call\s+last\)"
    rf"|(?:https?|http/[\d.]+)\s*[45]\d\d\b|[45]\d\d\s+(?:{_HTTP_REASON})\b|(?:{_HTTP_REASON})\s*(?:[.!:]|$)"
    r"|(?:\S+\s+){0,2}(?:timed\s+out|connection\s+(?:refused|reset|error)|deadline\s+exceeded)\b"
    r"|timeout\s+(?:after|while|waiting|exceeded)\b)", re.I)

# "error: null" heading a "key: value" record says there was none (a YAML or .env-style result)
_NO_ERROR = re.compile(r"\s*(?:errors?|exception|err)\s*:\s*(?:null|none|nil|~|false|0|ok|n/a|\[\]|\{\})\s*$", re.I)
_KEY_LINE = re.compile(r"\s*[\w][\w .-]{0,40}:(?:\s|$)")

_FAILED: TextMemo[bool] = TextMemo(2_000_000)


def failure_in(content: str) -> bool:
    """True when a tool result reads as an error of the call (structure first, then a leading error
    label; linear, one JSON parse at most). Read once per text: detectors, action checks, incidents ask.

    >>> failure_in('{"status": 500, "message": "upstream inventory service unavailable"}')
    True
    >>> failure_in('{"payments": [{"payment_id": "p1", "status": "failed", "amount": 20}]}')
    False
    """
    return _FAILED.get(content, _read_failure)


def _read_failure(content: str) -> bool:
    head = content[:64].lstrip()
    if head[:1] == "{" or head[:1] == '"':
        try:
            data = orjson.loads(content)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict):
            return _dict_failed(data, 0)
        if isinstance(data, str):
            return _prose_failed(data)
    # A top-level JSON list is records: data, unless its head is an error label ("[ERROR] ...").
    return _prose_failed(content)


# A raised exception a tool runtime reports after whatever the call printed: "ValueError: ..." as the
# result's last line (AgentDojo's shape). Only the exception's own label counts there, not prose.
_LAST_LINE_ERROR = re.compile(r"(?:(?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)|Traceback \(most recent call last\))\s*:")


def _prose_failed(text: str) -> bool:
    head = text[:_FIRST_LINE].lstrip()  # lstrip of a bounded slice: blank-padded text stays cheap
    first, _, rest = head.partition("\n")
    if _PROSE_ERROR.match(first.rstrip()) and not (_NO_ERROR.match(first) and _KEY_LINE.match(rest)):
        return True
    tail = text[-_FIRST_LINE:].rstrip()
    return "\n" in tail and bool(_LAST_LINE_ERROR.match(tail.rpartition("\n")[2].lstrip()))


def _dict_failed(data: dict[str, Any], depth: int) -> bool:
    lowered = {str(k).lower(): v for k, v in data.items()}
    if any(_something(lowered.get(k)) for k in _ERROR_KEYS):
        return True
    if lowered.get("ok") is False or lowered.get("success") is False:
        return True
    if lowered.get("ok") is True or lowered.get("success") is True:
        return False  # the call says it worked: trust that over any other field
    if any(_http_error(lowered.get(k)) for k in _CODE_KEYS if k != "code" or _has_message(lowered)):
        return True
    if not _is_record(data):
        status = lowered.get("status", lowered.get("state"))
        if isinstance(status, str) and status.strip().lower().replace(" ", "_").replace("-", "_") in _BAD_STATUS:
            return True
        if any(isinstance(m := lowered.get(k), str) and _prose_failed(m) for k in _MESSAGE_KEYS):
            return True
    return depth < _MAX_DEPTH and any(
        isinstance(lowered.get(k), dict) and _dict_failed(lowered[k], depth + 1) for k in _WRAPPERS)


def _something(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in _EMPTY_TEXT
    return bool(value)  # null, false, 0, [] and {} all say "no error"


def _http_error(value: Any) -> bool:
    # 400-599 only: an HTTP error class. A bare number elsewhere (a count, a code 1234) is data.
    if isinstance(value, str) and len(value) == 3 and value.isdigit():
        value = int(value)
    return type(value) is int and 400 <= value < 600


def _has_message(lowered: dict[str, Any]) -> bool:
    return any(isinstance(lowered.get(k), str) for k in _MESSAGE_KEYS)


def _is_record(data: dict[str, Any]) -> bool:
    """An entity record (names an entity by id): its status is the entity's, not the call's."""
    keys = ((k, k.lower()) for k in map(str, data))
    return any((low == "id" or low.endswith("_id") or k.endswith("Id")) and low not in _CALL_IDS for k, low in keys)


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
