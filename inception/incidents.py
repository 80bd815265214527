"""What went wrong, when the agent reports a failure through a recovery tool (``report: true`` in the
pack, like ``report_internal_error``): the failed tool result it is about, and what kind of failure
that result says it was, so the reply to the user is worded from it and the operators hear of it.

Four kinds, each worded differently to the user: ``not_found`` (the record asked for does not exist:
not "our side"), ``rejected`` (the call was refused: a bad or missing value, a rule of the service),
``unavailable`` (a timeout, an overloaded or unreachable service: worth trying again later) and
``internal`` (anything else: the service broke). The result's own structure speaks first (an HTTP
status), then its error message's words; the agent's summary only when no failed result is in view.

    >>> failure_kind('{"error": "Order #W123 not found"}')
    'not_found'
    >>> failure_kind('{"status": 503, "message": "inventory service unavailable"}')
    'unavailable'
"""
from __future__ import annotations

import re
from typing import Any

import orjson

from inception.base import Incident
from inception.tool_results import failure_in
from policies.messages import AssistantMessage, Message, ToolMessage, UserMessage, text_of

KINDS = ("not_found", "rejected", "unavailable", "internal")
_READ = 600          # characters of an error message read: a failure says what it is at its head
_EVIDENCE = 300      # characters of the failed result an incident keeps
_CODE_KEYS = ("status", "status_code", "statuscode", "http_status", "code", "error_code")
_TEXT_KEYS = ("error", "errors", "message", "msg", "detail", "error_message", "reason", "description", "title")
_NESTED = ("error", "errors", "result", "data", "response", "body", "payload", "detail")

_NOT_FOUND = re.compile(r"\b(?:not\s+found|no\s+such|do(?:es)?\s*(?:n[o']t|not)\s+exist|"
                        r"unknown\s+(?!error|exception|failure|fault|issue|problem)[a-z_]+|"
                        r"(?:could\s*n[o']t|can\s*n[o']t|unable\s+to)\s+(?:be\s+)?(?:find|locate|found)|"
                        r"no\s+(?:[a-z_]+\s+){1,2}(?:found|matching|with\s+(?:id|number|code))|does\s+not\s+match\s+any)\b")
_UNAVAILABLE = re.compile(r"\b(?:timed\s+out|time-?outs?|unavailable|temporar(?:il)?y|try\s+again|"
                          r"connection\s+(?:refused|reset|error|failed)|unreachable|rate[\s_-]*limit|"
                          r"too\s+many\s+requests|overloaded|deadline\s+exceeded|maintenance|busy)\b")
_REJECTED = re.compile(r"\b(?:invalid|missing|required|must|not\s+(?:allowed|permitted|eligible)|ineligible|"
                       r"forbidden|unauthori[sz]ed|denied|declined|insufficient|exceed(?:s|ed)?|already|conflict|"
                       r"cannot\s+be|can't\s+be|mismatch|does\s+not\s+match|expired|out\s+of\s+stock|"
                       r"bad\s+request|unprocessable|malformed)\b")


def _by_status(code: int) -> str:
    if code in (404, 410):
        return "not_found"
    if code in (408, 429) or code in (502, 503, 504):
        return "unavailable"
    return "rejected" if code < 500 else "internal"


def _status_and_text(data: Any, depth: int = 0) -> tuple[int | None, list[str]]:
    """The HTTP-like status and the error words of a JSON error result (its envelope only)."""
    code, texts = None, []
    if isinstance(data, str):
        return None, [data]
    if isinstance(data, list):
        for item in data[:3]:
            c, t = _status_and_text(item, depth + 1) if depth < 3 else (None, [])
            code, texts = code or c, texts + t
        return code, texts
    if not isinstance(data, dict):
        return None, []
    lowered = {str(k).lower(): v for k, v in data.items()}
    for key in _CODE_KEYS:
        value = lowered.get(key)
        if isinstance(value, str) and len(value) == 3 and value.isdigit():
            value = int(value)
        if type(value) is int and 400 <= value < 600:
            code = code or value
    texts += [v for k in _TEXT_KEYS if isinstance(v := lowered.get(k), str)]
    if depth < 3:
        for key in _NESTED:
            if isinstance(lowered.get(key), (dict, list)):
                c, t = _status_and_text(lowered[key], depth + 1)
                code, texts = code or c, texts + t
    return code, texts


def failure_kind(text: str) -> str:
    """The kind of failure a failed tool result (or an agent's summary of one) describes."""
    head = text.lstrip()[:1]
    code, texts = None, [text]
    if head in ("{", "["):
        try:
            code, texts = _status_and_text(orjson.loads(text))
        except orjson.JSONDecodeError:
            pass
    if code is None:
        m = re.match(r"\s*(?:(?:https?|http/[\d.]+)\s*)?(?:error\s*)?([45]\d\d)\b", text, re.I)
        code = int(m.group(1)) if m else None
    words = " ".join(t[:_READ] for t in texts)[:2 * _READ].lower()
    for kind, pattern in (("not_found", _NOT_FOUND), ("unavailable", _UNAVAILABLE), ("rejected", _REJECTED)):
        if pattern.search(words):
            return kind
    return _by_status(code) if code is not None else "internal"


def last_failure(messages: list[Message] | None) -> tuple[str | None, str] | None:
    """(tool name, result) of the latest failed tool result since the user's last turn, or None."""
    names: dict[str, str] = {}
    found = None
    for m in messages or []:
        if isinstance(m, UserMessage):
            names, found = {}, None  # an earlier turn's failure is not what this report is about
        elif isinstance(m, AssistantMessage):
            names.update({c.id: c.function.name for c in m.tool_calls or []})
        elif isinstance(m, ToolMessage):
            content = text_of(m)
            if failure_in(content):
                found = (names.get(m.tool_call_id), content)
    return found


def incident(tool: str, args: dict[str, Any], messages: list[Message] | None) -> Incident:
    """The incident a call to the reporting tool ``tool`` with ``args`` describes."""
    summary = " ".join(str(args.get("summary") or args.get("reason") or args.get("error") or "").split())[:_EVIDENCE]
    failed = last_failure(messages)
    if failed is not None:
        name, result = failed
        return Incident(tool=tool, kind=failure_kind(result), summary=summary, failed_tool=name,
                        evidence=" ".join(result.split())[:_EVIDENCE])
    return Incident(tool=tool, kind=failure_kind(summary) if summary else "internal", summary=summary)


__all__ = ["KINDS", "failure_kind", "incident", "last_failure"]
