"""Structural limits on a request body, checked on the parsed JSON before any model validation.

Validating a body costs time per element: inside the 8 MiB body limit a content list of a
million integers took 9.5 s of CPU to refuse and 200,000 user messages 11 s to accept. Counting
lists costs microseconds, so every route counts first and refuses past these limits with a 413
naming the limit. Real clients stay far below them: a long agent session is hundreds of
messages, a message a handful of parts, a request a few dozen tools.

    >>> check_shape({"messages": [{"role": "user", "content": "hi"}]}, "chat")
    >>> check_shape({"messages": [{"role": "user", "content": [1] * 1001}]}, "chat")
    Traceback (most recent call last):
    ...
    middleware.proxy.errors.ProxyError: messages.0.content: 1001 parts is more than rein's limit of 1000 parts per message

A body larger than ``OFF_LOOP_BYTES`` is parsed and validated in a worker thread (``off_loop``),
so a large but valid body does not hold the event loop while other requests wait.
"""
from __future__ import annotations

import asyncio
import gc
import threading
from typing import Any, Callable, TypeVar

from middleware.proxy.errors import ProxyError

MAX_MESSAGES = 10_000           # messages (chat, Messages) or input items (Responses) per request
MAX_PARTS_PER_MESSAGE = 1_000   # content parts (blocks) in one message, tool result or input item
MAX_PARTS = 20_000              # content parts in the whole request, nested tool-result blocks included
MAX_TOOLS = 1_000               # tool definitions per request
# "[" and "{" characters in a body, in strings too: a bound on the JSON arrays and objects a body may
# make rein build (2.7 million empty lists fit in 8 MiB and cost 6 s of CPU to parse and walk).
MAX_BRACKETS = 200_000
OFF_LOOP_BYTES = 256 * 1024     # bodies past this size are parsed and validated off the event loop

T = TypeVar("T")
# Where each wire format keeps its messages, and the fields of a message that hold content parts.
_LISTS = {"chat": ("messages", ("content",)), "responses": ("input", ("content", "output")),
          "messages": ("messages", ("content",))}


def too_many(where: str, count: int, noun: str, limit: int, what: str) -> ProxyError:
    return ProxyError(413, f"{where}: {count} {noun} is more than rein's limit of {limit} {what}",
                      "request_too_large", where)


def check_brackets(raw: bytes) -> None:
    """Before parsing: a body that would build past ``MAX_BRACKETS`` arrays and objects is refused."""
    count = raw.count(b"[") + raw.count(b"{")
    if count > MAX_BRACKETS:
        raise ProxyError(413, f"request body: {count} '[' and '{{' is more than rein's limit of {MAX_BRACKETS} "
                              "JSON arrays and objects", "request_too_large")


class gc_paused:
    """The cyclic GC off while a large body is parsed, checked and validated (in a worker thread:
    a collection there holds the GIL, and so the event loop): a JSON tree and the messages made
    from it have no cycles, and the collector's passes over millions of new containers cost ten
    times the parse itself."""

    _lock = threading.Lock()
    _depth = 0
    _was_enabled = True  # restored as found: a server that turned the collector off keeps it off

    def __init__(self, active: bool = True):
        self.active = active

    def __enter__(self) -> None:
        if self.active:
            cls = type(self)
            with cls._lock:
                if cls._depth == 0:
                    cls._was_enabled = gc.isenabled()
                cls._depth += 1
                gc.disable()

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            cls = type(self)
            with cls._lock:
                cls._depth -= 1
                if cls._depth == 0 and cls._was_enabled:
                    gc.enable()


def check_shape(data: dict[str, Any], protocol: str) -> None:
    """Raise a 413 ``ProxyError`` when a list in ``data`` is past a limit above."""
    key, content_keys = _LISTS[protocol]
    tools = data.get("tools")
    if isinstance(tools, list) and len(tools) > MAX_TOOLS:
        raise too_many("tools", len(tools), "tools", MAX_TOOLS, "tools per request")
    messages = data.get(key)
    if not isinstance(messages, list):
        return
    if len(messages) > MAX_MESSAGES:
        noun, what = ("items", "messages (input items) per request") if protocol == "responses" else (
            "messages", "messages per request")
        raise too_many(key, len(messages), noun, MAX_MESSAGES, what)
    total = _parts(data.get("system"), "system", 0) if protocol == "messages" else 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        for field in content_keys:
            parts = message.get(field)
            total = _parts(parts, f"{key}.{i}.{field}", total)
            if protocol == "messages" and isinstance(parts, list):  # tool_result blocks hold parts of their own
                for j, block in enumerate(parts):
                    if isinstance(block, dict):
                        total = _parts(block.get("content"), f"{key}.{i}.{field}.{j}.content", total)


def _parts(parts: Any, where: str, total: int) -> int:
    if not isinstance(parts, list):
        return total
    if len(parts) > MAX_PARTS_PER_MESSAGE:
        raise too_many(where, len(parts), "parts", MAX_PARTS_PER_MESSAGE, "parts per message")
    total += len(parts)
    if total > MAX_PARTS:
        raise ProxyError(413, f"{where}: the request has more than rein's limit of {MAX_PARTS} content parts",
                         "request_too_large", where)
    return total


async def off_loop(size: int, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in a worker thread when the body is large, inline (no thread hop) otherwise."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(work, *args)
    return work(*args)
