"""Whether a tool result reports an error of the call: read from its structure first (a JSON
object's error keys, status codes, the wrappers APIs put around an answer), then from a leading
error label of its prose. Read once per text (``failure_in``): the detectors, the action checks and
the incident log ask the same question of the same results."""
from __future__ import annotations

import re
from typing import Any

import orjson

from inception.memo import TextMemo

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

# the reason phrases of HTTP 408, 429, 500 and 502-504: the ones a retry may get past
_RETRYABLE_REASON = (r"request\s+timeout|too\s+many\s+requests|internal\s+server\s+error|bad\s+gateway"
                     r"|service\s+unavailable|gateway\s+time-?out")
_HTTP_REASON = (r"bad\s+request|unauthori[sz]ed|forbidden|not\s+found|method\s+not\s+allowed|conflict"
                rf"|unprocessable\s+entity|not\s+implemented|{_RETRYABLE_REASON}")
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
    r"|timeout\s+(?:after|while|waiting|exceeded)\b"
    r"|error\s+(?:from|response\s+from|in)\b[^:\n]{0,120}:"  # "Error from server (NotFound):", "Error in f(x) :"
    r"|[\w.-]+\s+err!|exception\s+in\s+thread\b"  # "npm ERR! code E404", a JVM's uncaught exception
    # a command-line tool's "prog: what: reason"
    r"|[\w./-]+:\s+(?:[^:\n]{1,200}:\s+)?(?:command\s+not\s+found|no\s+such\s+file\s+or\s+directory|permission\s+denied)\s*$)", re.I)

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


# A failure that says it may pass if the same call is sent again: a server error, overload, rate
# limit or time-out (HTTP 408, 429, 5xx), not a refusal of the call itself ("insufficient funds").
_TRANSIENT = re.compile(
    rf"\b(?:{_RETRYABLE_REASON}|rate[\s_-]?limit\w*|throttl\w*|overloaded|temporar(?:y|ily)"
    r"|try\s+again\s+(?:later|shortly|soon|in\b)|timed?[\s_-]?out|deadline\s+exceeded"
    r"|connection\s+(?:refused|reset|aborted|error|timeout))\b"
    r"|(?:\bhttps?|\bhttp/[\d.]+|\bstatus(?:[\s_]?code)?|\berror|\bcode)[\"':=\s]{0,4}(?:408|429|50[0-4])\b", re.I)


def transient_failure(content: str) -> bool:
    """A failed call's result that says sending the same call again may succeed (a 503, a time-out):
    re-sending it is a retry, not a repeated mistake (the built-in repeated_failed_write check).

    >>> transient_failure('{"status": 503, "message": "upstream unavailable"}'), transient_failure("Error: insufficient funds")
    (True, False)
    """
    return failure_in(content) and _TRANSIENT.search(content[:_FIRST_LINE]) is not None
