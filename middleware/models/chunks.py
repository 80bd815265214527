"""Between whole completions and ``chat.completion.chunk`` streams, both directions, and the
upstream's own chunks re-emitted with the text rein changed (its ids, fields and chunking kept)."""
from __future__ import annotations

import difflib
import time
import uuid
from typing import Any, Iterable

from policies.messages import AssistantMessage, FunctionCall, ToolCall, assistant
from policies.chat_model import ModelResponse


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
                    role: bool = True, like: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A whole response as the chunks a streaming upstream would have sent; ``like``, a chunk the
    upstream sent, gives them its id, created, model and every top-level field rein does not know."""
    id_ = id_ or (like or {}).get("id") or new_id()
    model = model or (like or {}).get("model") or resp.model
    created = (like or {}).get("created") or int(time.time())
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
    if like:
        extra = {k: v for k, v in like.items() if k not in ("choices", "usage")}
        out = [{**extra, **c} for c in out]
    return out


def content_of(c: dict[str, Any]) -> str | None:
    choices = c.get("choices") or []
    content = (choices[0].get("delta") or {}).get("content") if choices else None
    return content if isinstance(content, str) else None


def with_content(c: dict[str, Any], content: str, rest: bool = False) -> dict[str, Any]:
    """``c`` carrying other text; ``rest``: the second part of a split chunk (its other delta
    fields, a role, already went out with the first)."""
    choice = c["choices"][0]
    delta = {"content": content} if rest else {**(choice.get("delta") or {}), "content": content}
    return {**c, "choices": [{**choice, "delta": delta}, *c["choices"][1:]]}


def edits_between(old: str, new: str) -> list[tuple[int, int, str]]:
    """(start, end, replacement) edits, in ``old``'s offsets, that turn ``old`` into ``new``."""
    if old == new:
        return []
    if len(old) + len(new) <= 4000:
        ops = difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes()
        return [(i1, i2, new[j1:j2]) for op, i1, i2, j1, j2 in ops if op != "equal"]
    p = 0  # long texts: one edit between the common head and tail (linear)
    while p < min(len(old), len(new)) and old[p] == new[p]:
        p += 1
    q = 0
    while q < min(len(old), len(new)) - p and old[-1 - q] == new[-1 - q]:
        q += 1
    return [(p, len(old) - q, new[p:len(new) - q])]


def piece_of(text: str, start: int, end: int, edits: list[tuple[int, int, str]], last: bool) -> str:
    """What ``text[start:end]`` becomes under ``edits`` (sorted, non-overlapping): an edit's
    replacement goes with the piece it starts in, so a changed value keeps the chunk it came in."""
    out, k = [], start
    for s, e, new in edits:
        if s < start:  # began in an earlier piece: drop what it covers here
            k = max(k, min(e, end))
            continue
        if s > end or (s == end and not last):
            break
        out += [text[k:s], new]
        k = max(s, min(e, end))
    out.append(text[k:end])
    return "".join(out)


def reshape(chunks: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The upstream's chunks, as sent, with their text turned into ``text``: the same ids, fields
    and chunking; a chunk left with no text and nothing else goes."""
    spans, pos = [], 0
    for c in chunks:
        content = content_of(c)
        spans.append((pos, pos + len(content)) if content else None)
        pos += len(content or "")
    original = "".join(content_of(c) or "" for c in chunks)
    if original == text:
        return list(chunks)
    edits = edits_between(original, text)
    last = max((i for i, s in enumerate(spans) if s), default=-1)
    if last < 0:  # nothing carried text: the text goes before the finishing chunk
        at = next((i for i, c in enumerate(chunks) if any(ch.get("finish_reason") for ch in c.get("choices") or [])),
                  len(chunks))
        like = chunks[0] if chunks else None
        extra = [c for c in response_chunks(ModelResponse(message=assistant(text)), role=False, like=like)[:-1]]
        return chunks[:at] + extra + chunks[at:]
    out = []
    for i, c in enumerate(chunks):
        if spans[i] is None:
            out.append(c)
            continue
        piece = piece_of(original, *spans[i], edits, i == last)
        if piece or len((c["choices"][0].get("delta") or {})) > 1:
            out.append(with_content(c, piece))
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
