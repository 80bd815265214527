"""rein's reply -> OpenAI Responses: a response object (``render``), or, streamed, the events of
one (``ResponsesEncoder``), each with its ``sequence_number``.

The pipeline streams in chat-chunk form (already without rein-owned tool calls and with text
held back while a refiner may change it); the encoder turns each chunk into the Responses events
it stands for as it arrives, so the release rules are the same as on chat completions.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

from middleware.proxy.routes.responses_map import new_id
from middleware.redact import redact
from policies.chat_model import ModelResponse
from policies.messages import AssistantMessage


def usage_out(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens", 0)
    i, o = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return {"input_tokens": i, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": o,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": usage.get("total_tokens", i + o)}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def output_items(message: AssistantMessage) -> list[dict[str, Any]]:
    items = []
    content = message.content
    parts = [text_part(content)] if isinstance(content, str) and content else [
        text_part(p.get("text", "")) if p.get("type") == "text" else p for p in content or [] if isinstance(p, dict)]
    extra = {k: v for k, v in (message.model_extra or {}).items() if v is not None}
    if extra.get("refusal"):
        parts.append({"type": "refusal", "refusal": extra.pop("refusal")})
    if parts:
        items.append({"type": "message", "id": new_id("msg_"), "status": "completed", "role": "assistant",
                      "content": parts, **extra})
    for call in message.tool_calls or []:
        items.append({"type": "function_call", "id": new_id("fc_"), "call_id": call.id, "name": call.function.name,
                      "arguments": call.function.arguments, "status": "completed", **(call.model_extra or {})})
    return items


def response_object(resp_id: str, output: list[dict[str, Any]], turn_echo: dict[str, Any], model: str,
                    finish_reason: str | None, usage: dict[str, Any] | None, status: str = "completed",
                    raw: dict[str, Any] | None = None) -> dict[str, Any]:
    incomplete = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(finish_reason or "")
    body: dict[str, Any] = {
        "id": resp_id, "object": "response", "created_at": int(time.time()),
        "status": "incomplete" if incomplete and status == "completed" else status,
        "error": None, "incomplete_details": {"reason": incomplete} if incomplete else None,
        "model": model, "output": output, "usage": usage_out(usage), **turn_echo}
    for key, value in (raw or {}).items():  # upstream fields rein does not model come back as they were
        if key not in ("id", "object", "created", "model", "choices", "usage") and key not in body:
            body[key] = value
    return body


def render(resp_id: str, final: ModelResponse, echo: dict[str, Any]) -> dict[str, Any]:
    return response_object(resp_id, output_items(final.message), echo, final.model or echo.get("model") or "",
                           final.finish_reason, final.usage, raw=final.raw)



class ResponsesEncoder:
    closing = b""

    def __init__(self, resp_id: str, echo: dict[str, Any], model: str):
        self.id = resp_id
        self.echo = echo
        self.model = model
        self.seq = 0
        self.output: list[dict[str, Any]] = []
        self.text_at: int | None = None          # output index of the open message item
        self.calls: dict[int, int] = {}          # chat tool-call index -> output index
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.raw: dict[str, Any] = {}
        self.started = False
        self.final: dict[str, Any] | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _snapshot(self, status: str) -> dict[str, Any]:
        return response_object(self.id, self.output, self.echo, self.model, self.finish_reason, self.usage,
                                    status, self.raw)

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        snap = self._snapshot("in_progress")
        return self._event("response.created", response=snap) + self._event("response.in_progress", response=snap)

    def chunk(self, c: dict[str, Any]) -> bytes:
        out = [self._start()]
        self.model = c.get("model") or self.model
        for key, value in c.items():  # upstream fields rein does not model (system_fingerprint, ...)
            if key not in ("id", "object", "created", "model", "choices", "usage"):
                self.raw[key] = value
        if c.get("usage"):
            self.usage = c["usage"]
        for choice in c.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.append(self._text(delta["content"]))
            for tc in delta.get("tool_calls") or []:
                out.append(self._call(tc))
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return b"".join(out)

    def _text(self, piece: str) -> bytes:
        out = b""
        if self.text_at is None:
            self.text_at = len(self.output)
            item = {"type": "message", "id": new_id("msg_"), "status": "in_progress", "role": "assistant",
                    "content": []}
            self.output.append(item)
            out += self._event("response.output_item.added", output_index=self.text_at, item=dict(item, content=[]))
            item["content"].append(text_part(""))
            out += self._event("response.content_part.added", item_id=item["id"], output_index=self.text_at,
                               content_index=0, part=text_part(""))
        item = self.output[self.text_at]
        item["content"][0]["text"] += piece
        return out + self._event("response.output_text.delta", item_id=item["id"], output_index=self.text_at,
                                 content_index=0, delta=piece, logprobs=[])

    def _call(self, tc: dict[str, Any]) -> bytes:
        out = b""
        index = tc.get("index", 0)
        fn = tc.get("function") or {}
        if index not in self.calls:
            self.calls[index] = len(self.output)
            item = {"type": "function_call", "id": new_id("fc_"), "call_id": tc.get("id") or new_id("call_"),
                    "name": fn.get("name") or "", "arguments": "", "status": "in_progress"}
            self.output.append(item)
            out += self._event("response.output_item.added", output_index=self.calls[index], item=dict(item))
        at = self.calls[index]
        item = self.output[at]
        if fn.get("arguments"):
            item["arguments"] += fn["arguments"]
            out += self._event("response.function_call_arguments.delta", item_id=item["id"], output_index=at,
                               delta=fn["arguments"])
        return out

    def _close(self) -> bytes:
        out = []
        for at, item in enumerate(self.output):
            if item["status"] != "in_progress":
                continue
            item["status"] = "completed"
            if item["type"] == "message":
                part = item["content"][0]
                out.append(self._event("response.output_text.done", item_id=item["id"], output_index=at,
                                       content_index=0, text=part["text"], logprobs=[]))
                out.append(self._event("response.content_part.done", item_id=item["id"], output_index=at,
                                       content_index=0, part=part))
            else:
                item["arguments"] = item["arguments"] or "{}"
                out.append(self._event("response.function_call_arguments.done", item_id=item["id"], output_index=at,
                                       name=item["name"], arguments=item["arguments"]))
            out.append(self._event("response.output_item.done", output_index=at, item=item))
        return b"".join(out)

    def finish(self, state: dict[str, Any]) -> bytes:
        final = state.get("final")
        if final is not None and final.usage:  # the stream may not have carried usage
            self.usage = self.usage or final.usage
        out = self._start() + self._close()
        self.final = self._snapshot("completed")
        return out + self._event("response.completed", response=self.final)

    def error(self, message: str, code: str, status: int) -> bytes:
        return self._event("error", code=code, message=redact(message), param=None)

    def body(self) -> dict[str, Any]:
        return self.final or self._snapshot("failed")
