"""Between whole completions and ``chat.completion.chunk`` streams, both directions."""
from __future__ import annotations

import time
import uuid
from typing import Any, Iterable

from policies.messages import AssistantMessage, FunctionCall, ToolCall, assistant
from policies.model import ModelResponse


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion_json(resp: ModelResponse, model: str | None = None, id_: str | None = None) -> dict[str, Any]:
    """An OpenAI ``chat.completion`` body for a response (reusing the upstream's when present)."""
    message = resp.message.model_dump(exclude_unset=True, mode="json")
    message.setdefault("content", None)
    if resp.raw and resp.raw.get("choices"):
        body = dict(resp.raw)
        choice = dict(body["choices"][0])
        choice["message"] = message
        choice["finish_reason"] = resp.finish_reason
        body["choices"] = [choice] + list(body["choices"][1:])
        return body
    body = {
        "id": id_ or new_id(), "object": "chat.completion", "created": int(time.time()),
        "model": model or resp.model,
        "choices": [{"index": 0, "message": message, "finish_reason": resp.finish_reason}],
    }
    if resp.usage is not None:
        body["usage"] = resp.usage
    return body


def chunk(id_: str, model: str, delta: dict[str, Any], finish_reason: str | None = None,
          created: int | None = None) -> dict[str, Any]:
    return {"id": id_, "object": "chat.completion.chunk", "created": created or int(time.time()),
            "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}


def split_text(text: str, size: int = 4) -> list[str]:
    """Split a reply into small word groups so a refined reply still streams progressively."""
    words = text.split(" ")
    pieces = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [p + (" " if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]


def response_chunks(resp: ModelResponse, id_: str | None = None, model: str | None = None,
                    role: bool = True) -> list[dict[str, Any]]:
    """A whole response as the chunks a streaming upstream would have sent."""
    id_ = id_ or new_id()
    model = model or resp.model
    created = int(time.time())
    out: list[dict[str, Any]] = []
    if role:
        out.append(chunk(id_, model, {"role": "assistant", "content": ""}, created=created))
    text = resp.message.content if isinstance(resp.message.content, str) else None
    if text:
        out += [chunk(id_, model, {"content": piece}, created=created) for piece in split_text(text)]
    for i, call in enumerate(resp.message.tool_calls or []):
        out.append(chunk(id_, model, {"tool_calls": [{
            "index": i, "id": call.id, "type": "function",
            "function": {"name": call.function.name, "arguments": call.function.arguments}}]},
            created=created))
    last = chunk(id_, model, {}, resp.finish_reason or "stop", created=created)
    if resp.usage is not None:
        last["usage"] = resp.usage
    out.append(last)
    return out


class ChunkAccumulator:
    """Folds a chunk stream back into one response (content, tool calls, usage)."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model = ""
        self.id = ""

    def add(self, c: dict[str, Any]) -> None:
        self.model = c.get("model") or self.model
        self.id = c.get("id") or self.id
        if c.get("usage"):
            self.usage = c["usage"]
        for choice in c.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.text.append(delta["content"])
            for tc in delta.get("tool_calls") or []:
                slot = self.calls.setdefault(tc.get("index", 0), {"id": "", "name": "", "arguments": ""})
                slot["id"] = tc.get("id") or slot["id"]
                fn = tc.get("function") or {}
                slot["name"] += fn.get("name") or ""
                slot["arguments"] += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def extend(self, chunks: Iterable[dict[str, Any]]) -> "ChunkAccumulator":
        for c in chunks:
            self.add(c)
        return self

    def response(self) -> ModelResponse:
        calls = [ToolCall(id=s["id"] or f"call_{i}", type="function", function=FunctionCall(name=s["name"], arguments=s["arguments"] or "{}"))
                 for i, s in sorted(self.calls.items())]
        msg: AssistantMessage = assistant("".join(self.text) if self.text or not calls else None, calls or None)
        return ModelResponse(message=msg, model=self.model, finish_reason=self.finish_reason or "stop", usage=self.usage)
