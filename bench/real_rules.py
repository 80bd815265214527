"""The plain reference rules bench/real_dialogues.py judges rein's detectors against. They read the
raw OpenAI messages and share no code with the detectors, so agreement means something."""
from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

# A raised exception as a tool runtime reports it, on the result's first or last line (AgentDojo puts
# "ValueError: ..." last): a class name ending in Error or Exception, then a colon.
_EXCEPTION = re.compile(r"(?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception):")  # also java.lang.X, requests.exceptions.X
# an error label, an exception label, a failure, a Python traceback or an HTTP error status opening the
# text ("Errors in the last 24h: 0" is data)
_ERROR_HEAD = re.compile(r"errors?\s*[:!\-\[]|error\b|exception\s*:|failed to\b|traceback \(most recent call last\)"
                         r"|http(?:/[\d.]+)?\s+[45]\d\d\b|\S+ err!|exception in thread\b", re.I)
# a command-line tool's complaint, the whole first line: "bash: foo: command not found"
_SHELL_ERROR = re.compile(r"\S+: (?:.+: )?(?:command not found|no such file or directory|permission denied)$", re.I)
# "error: null" then "key: value" lines: a record saying there was no error
_NO_ERROR = re.compile(r"errors?\s*:\s*(?:null|none|nil|~|false|0|ok|n/a|\[\]|\{\})\s*\n\s*\w[\w .-]{0,40}:", re.I)


def reference_error(text: str) -> bool:
    t = (text or "").strip()
    if _ERROR_HEAD.match(t) and not _NO_ERROR.match(t):
        return True
    lines = t.splitlines()
    if lines and _SHELL_ERROR.match(lines[0].strip()):
        return True
    if lines and (_EXCEPTION.match(lines[0]) or _EXCEPTION.match(lines[-1])):
        return True
    try:
        data = json.loads(t)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    def code(v: Any) -> int | None:  # an HTTP status, as a number or as its digits
        if isinstance(v, str) and len(v) == 3 and v.isdigit():
            v = int(v)
        return v if isinstance(v, int) and not isinstance(v, bool) else None
    status = data.get("status")
    return bool(data.get("error")) or bool(data.get("errors")) \
        or any((code(data.get(k)) or 0) >= 400 for k in ("status", "status_code")) \
        or (code(data.get("code")) or 0) >= 400 and isinstance(data.get("message"), str) \
        or isinstance(status, str) and status.lower() in ("error", "failed", "failure") \
        or data.get("success") is False or data.get("ok") is False


def turn_calls(raw: list[dict[str, Any]], cut: int) -> list[tuple[str, str, str | None]]:
    """(tool, canonical arguments, result text) for the calls of the current user turn; results
    are paired to calls by position within each assistant message's block (ids repeat)."""
    start = max((i for i in range(cut) if raw[i].get("role") == "user"), default=-1) + 1
    out: list[tuple[str, str, str | None]] = []
    i = start
    while i < cut:
        m = raw[i]
        i += 1
        if m.get("role") != "assistant" or not m.get("tool_calls"):
            continue
        results = []
        while i < cut and raw[i].get("role") == "tool":
            results.append(raw[i].get("content") or "")
            i += 1
        for k, call in enumerate(m["tool_calls"]):
            fn = call.get("function") or {}
            try:
                args = json.dumps(json.loads(fn.get("arguments") or "{}"), sort_keys=True)
            except ValueError:
                args = fn.get("arguments") or ""
            out.append((fn.get("name") or "", args, results[k] if k < len(results) else None))
    return out


def reference_failure(raw: list[dict[str, Any]], cut: int) -> bool:
    """An error result in this user turn with no later success of the same tool."""
    latest: dict[str, bool] = {}
    for name, _, result in turn_calls(raw, cut):
        if result is not None:
            latest[name] = reference_error(result)
    return any(latest.values())


def stale_loop(raw: list[dict[str, Any]], cut: int) -> bool:
    """An action_loop alarm here is stale when the turn's latest call is not a repeated one."""
    calls = [(n, a) for n, a, _ in turn_calls(raw, cut)]
    return not calls or Counter(calls)[calls[-1]] < 2
