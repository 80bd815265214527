"""rein's reply -> Anthropic Messages: a message (``render``), or, streamed, its events
(``MessagesEncoder``).

``message_start`` and a ``ping`` open the stream; text and each tool call are content blocks
(``content_block_start`` / ``_delta`` with ``text_delta`` or ``input_json_delta`` / ``_stop``);
``message_delta`` carries the stop reason and usage, ``message_stop`` ends it.
"""
from __future__ import annotations

import uuid
from typing import Any

import orjson

from middleware.proxy.errors import messages_error_body
from policies.chat_model import ModelResponse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def new_id() -> str:
    return "msg_" + uuid.uuid4().hex[:24]


def usage_out(usage: dict[str, Any] | None) -> dict[str, Any]:
    usage = usage or {}
    out = {"input_tokens": usage.get("prompt_tokens", 0), "output_tokens": usage.get("completion_tokens", 0)}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached:
        out["cache_read_input_tokens"] = cached
    return out


def tool_input(arguments: str) -> dict[str, Any]:
    """Anthropic's ``input`` is an object; arguments that are not one are kept under 'arguments'."""
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {"arguments": arguments}
    return value if isinstance(value, dict) else {"arguments": value}


def render(final: ModelResponse, model: str | None) -> dict[str, Any]:
    message = final.message
    content: list[dict[str, Any]] = []
    if isinstance(message.content, str) and message.content:
        content.append({"type": "text", "text": message.content})
    elif isinstance(message.content, list):
        content += [{"type": "text", "text": p.get("text", "")} for p in message.content
                    if isinstance(p, dict) and p.get("type") == "text"]
    calls = message.tool_calls or []
    content += [{"type": "tool_use", "id": c.id, "name": c.function.name, "input": tool_input(c.function.arguments)}
                for c in calls]
    stop = "tool_use" if calls else STOP_REASONS.get(final.finish_reason or "stop", "end_turn")
    if stop == "tool_use" and not calls:
        stop = "end_turn"
    return {"id": new_id(), "type": "message", "role": "assistant", "model": final.model or model or "",
            "content": content, "stop_reason": stop, "stop_sequence": None, "usage": usage_out(final.usage)}


def event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class MessagesEncoder:
    closing = b""

    def __init__(self, model: str):
        self.id = new_id()
        self.model = model
        self.started = False
        self.blocks: list[dict[str, Any]] = []
        self.open: int | None = None
        self.text_at: int | None = None
        self.calls: dict[int, int] = {}      # chat tool-call index -> block index
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        message = {"id": self.id, "type": "message", "role": "assistant", "model": self.model, "content": [],
                   "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0}}
        return event("message_start", {"message": message}) + event("ping", {})

    def _open(self, block: dict[str, Any]) -> bytes:
        out = self._stop()
        self.blocks.append(block)
        self.open = len(self.blocks) - 1
        return out + event("content_block_start", {"index": self.open, "content_block": block})

    def _stop(self) -> bytes:
        if self.open is None:
            return b""
        index, self.open = self.open, None
        return event("content_block_stop", {"index": index})

    def chunk(self, c: dict[str, Any]) -> bytes:
        out = [self._start()]
        self.model = c.get("model") or self.model
        if c.get("usage"):
            self.usage = c["usage"]
        for choice in c.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.text_at is None or self.open != self.text_at:
                    out.append(self._open({"type": "text", "text": ""}))
                    self.text_at = self.open
                out.append(event("content_block_delta", {"index": self.text_at,
                                                         "delta": {"type": "text_delta", "text": delta["content"]}}))
            for tc in delta.get("tool_calls") or []:
                index = tc.get("index", 0)
                fn = tc.get("function") or {}
                if index not in self.calls:
                    out.append(self._open({"type": "tool_use", "id": tc.get("id") or "toolu_" + self.id[4:],
                                           "name": fn.get("name") or "", "input": {}}))
                    self.calls[index] = self.open
                if fn.get("arguments"):
                    out.append(event("content_block_delta", {"index": self.calls[index], "delta": {
                        "type": "input_json_delta", "partial_json": fn["arguments"]}}))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return b"".join(out)

    def finish(self, state: dict[str, Any]) -> bytes:
        final = state.get("final")
        if final is not None and final.usage:
            self.usage = self.usage or final.usage
        stop = "tool_use" if self.calls else STOP_REASONS.get(self.finish_reason or "stop", "end_turn")
        if stop == "tool_use" and not self.calls:  # the only calls were rein's own: the turn ended in text
            stop = "end_turn"
        usage = usage_out(self.usage)
        return (self._start() + self._stop()
                + event("message_delta", {"delta": {"stop_reason": stop, "stop_sequence": None}, "usage": usage})
                + event("message_stop", {}))

    def error(self, message: str, code: str, status: int) -> bytes:
        return event("error", {"error": messages_error_body(status, message)["error"]})

    def body(self) -> dict[str, Any]:
        return {"id": self.id}
