"""Parse and check a chat completion request; every problem becomes a clear ProxyError."""
from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from middleware.proxy.errors import ProxyError
from middleware.proxy.routes.limits import OFF_LOOP_BYTES, check_brackets, check_shape, gc_paused
from policies.limits import MAX_DEPTH, too_deep
from policies.messages import AssistantMessage, Message, ToolMessage


class ToolFunction(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["function"] = "function"
    function: ToolFunction


class ChatCompletionRequest(BaseModel):
    """OpenAI Chat Completions request. Fields rein does not know are kept and passed on."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    stream: bool = False
    stream_options: dict[str, Any] | None = None
    user: str | None = None


_ROLES = ("system", "developer", "user", "assistant", "tool")
# pydantic names the member of a union it tried ("str", "list[dict[str,any]]"): noise to a caller.
_UNION_MEMBER = re.compile(r"^(str|int|float|bool|none|dict\[.*\]|list\[.*\]|function-.*|literal\[.*\])$")


def _where(loc: tuple) -> str:
    parts = []
    for i, p in enumerate(loc):
        if isinstance(p, str) and (_UNION_MEMBER.match(p) or (i == 2 and loc[0] == "messages" and p in _ROLES)):
            continue
        parts.append(str(p))
    return ".".join(parts)


def _describe(errors: list[dict[str, Any]]) -> tuple[str, str | None]:
    """One line per field, union alternatives merged: 'messages.0.content: Input should be a
    valid string or a valid list'. Returns (message, the first field's path)."""
    by_field: dict[str, list[str]] = {}
    for e in errors:
        where = _where(e["loc"])
        msg = e["msg"]
        if e["type"] == "union_tag_not_found":  # a message without a role
            where, msg = where + ".role", f"Field required: one of {', '.join(_ROLES)}"
        elif e["type"] == "union_tag_invalid":
            tag = (e.get("ctx") or {}).get("tag", e.get("input"))
            where, msg = where + ".role", f"unknown role {tag!r}: expected one of {', '.join(_ROLES)}"
        seen = by_field.setdefault(where, [])
        if seen and msg.startswith("Input should be ") and seen[0].startswith("Input should be "):
            msg = msg[len("Input should be "):]
        if msg not in seen:
            seen.append(msg)
    lines = [f"{where or '(body)'}: {' or '.join(msgs)}" for where, msgs in list(by_field.items())[:5]]
    return "; ".join(lines), next(iter(by_field), None) or None


def load_body(raw: bytes, protocol: str) -> dict[str, Any]:
    """The body as a JSON object, held to the depth and the structural limits (limits.py) before
    any model validation: the same checks on every route."""
    check_brackets(raw)
    with gc_paused(len(raw) > OFF_LOOP_BYTES):
        data = _load(raw, protocol)
        check_depth(data)
        return data


def _load(raw: bytes, protocol: str) -> dict[str, Any]:
    """The JSON object, its lists counted (not yet its depth)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit"):
            raise ProxyError(400, f"request body: JSON nested more than {MAX_DEPTH} levels deep", "json_too_deep") from None
        raise ProxyError(400, f"request body is not valid JSON: {e}", "invalid_json") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "request body must be a JSON object", "invalid_json")
    check_shape(data, protocol)  # counts first: cheaper than the depth walk over a list of a million items
    return data


def parse_body(raw: bytes) -> tuple[dict[str, Any], ChatCompletionRequest]:
    check_brackets(raw)
    with gc_paused(len(raw) > OFF_LOOP_BYTES):
        return _parse(raw)


def _parse(raw: bytes) -> tuple[dict[str, Any], ChatCompletionRequest]:
    data = _load(raw, "chat")
    key = TOOLS.key(data)
    known = TOOLS.get(key)
    check_depth(data, tools_checked=known is not None)
    if "messages" not in data:
        hint = ""
        if "input" in data:  # the newcomer's mistake: a Responses body sent to the chat route
            hint = ": this body has 'input', as an OpenAI Responses request does; send it to POST /v1/responses"
        raise ProxyError(400, "'messages' is required" + hint, "missing_required_parameter", "messages")
    request = _validate(data, known)
    check_tool_messages(request.messages)
    if known is None and key is not None:
        TOOLS.add(key, request.tools)
    return data, request


class CheckedTools:
    """Tool lists that passed the depth check and validation, kept by their JSON. A client sends
    the same tools on every turn, and their JSON Schemas are most of a body's objects: on the
    airline bodies (14 tools) 58 of the 75 us of the depth walk and 26 of the 86 us of validation.
    A list with the same JSON is the same list to both checks, so it is not checked again. The
    key is made from the parsed list; one that cannot be serialised (nested past orjson's 255
    levels), or past ``max_bytes``, has none and is checked in full (at most ``size`` x
    ``max_bytes`` held)."""

    def __init__(self, size: int = 32, max_bytes: int = 256 * 1024):
        self.size = size
        self.max_bytes = max_bytes
        self.kept: dict[bytes, list[Tool]] = {}

    def key(self, data: dict[str, Any]) -> bytes | None:
        tools = data.get("tools")
        if not isinstance(tools, list) or not tools:
            return None
        try:
            key = orjson.dumps(tools)
        except TypeError:
            return None
        return key if len(key) <= self.max_bytes else None

    def get(self, key: bytes | None) -> list[Tool] | None:
        return None if key is None else self.kept.get(key)

    def add(self, key: bytes, tools: list[Tool] | None) -> None:
        if tools is None:
            return
        if len(self.kept) >= self.size:  # (many clients' tool lists: start again rather than track use)
            self.kept.clear()
        self.kept[key] = tools


TOOLS = CheckedTools()
_MESSAGES: TypeAdapter[list[Message]] = TypeAdapter(list[Message])
CHUNK = 256  # messages validated per call: one pydantic call holds the GIL from start to end


def _validate(data: dict[str, Any], tools: list[Tool] | None = None) -> ChatCompletionRequest:
    """The request validated; a long dialogue a chunk of messages at a time, so that a worker
    thread (limits.off_loop) lets the event loop run between chunks. ``tools``: the body's tools
    as validated before (``CheckedTools``), not validated again."""
    messages = data["messages"]
    chunked = isinstance(messages, list) and len(messages) > CHUNK
    errors: list[dict[str, Any]] = []
    head = data
    if chunked or tools is not None:
        head = {**data, "messages": messages[:1]} if chunked else dict(data)
        if tools is not None:
            head["tools"] = None
    try:
        request = ChatCompletionRequest.model_validate(head)
        if tools is not None:
            request.tools = list(tools)
    except ValidationError as e:
        if not chunked:
            detail, where = _describe(e.errors())
            raise ProxyError(422, f"invalid request: {detail}", "invalid_value", where or None) from None
        errors = [err for err in e.errors() if err["loc"][:1] != ("messages",)]  # the chunks report messages
        request = None
    if chunked:
        out: list[Message] = []
        for start in range(0, len(messages), CHUNK):
            try:
                out += _MESSAGES.validate_python(messages[start:start + CHUNK])
            except ValidationError as e:
                errors += [{**err, "loc": ("messages", err["loc"][0] + start, *err["loc"][1:])} for err in e.errors()]
        if errors:
            detail, where = _describe(errors)
            raise ProxyError(422, f"invalid request: {detail}", "invalid_value", where or None)
        request.messages = out
    return request


def check_depth(data: dict[str, Any], tools_checked: bool = False) -> None:
    """400 for JSON nested past ``MAX_DEPTH``, checked once here for every path that later
    re-serialises the body (upstream calls, the persona store, the fast path's relay alike).
    ``metadata.rein_profile`` may be a JSON string: it is read as JSON, so it is held to it too.
    ``tools_checked``: the body's tools are a list that passed before (``CheckedTools``)."""
    rest = {k: v for k, v in data.items() if k != "tools"} if tools_checked else data
    where = too_deep(rest)
    if where is not None and rest is not data:
        where = too_deep(data)  # the same path the whole body's walk names
    if where is None:
        metadata = data.get("metadata")
        raw = metadata.get("rein_profile") if isinstance(metadata, dict) else None
        if isinstance(raw, str) and raw.count("[") + raw.count("{") > MAX_DEPTH - 2:
            try:
                deep = too_deep(orjson.loads(raw), MAX_DEPTH - 2) is not None
            except orjson.JSONDecodeError:  # invalid JSON is ignored later, unless it is a pile of brackets
                deep = True
            where = "metadata.rein_profile" if deep else None
    if where is not None:
        raise ProxyError(400, f"{where}: JSON nested more than {MAX_DEPTH} levels deep", "json_too_deep", where)


def check_tool_messages(messages: list[Message]) -> None:
    """A tool message must answer a tool call made earlier in the dialogue."""
    seen: set[str] = set()
    for i, m in enumerate(messages):
        if isinstance(m, AssistantMessage):
            seen.update(c.id for c in m.tool_calls or [])
        elif isinstance(m, ToolMessage) and m.tool_call_id not in seen:
            raise ProxyError(400, f"messages.{i}: tool_call_id {m.tool_call_id!r} matches no earlier tool call",
                             "invalid_tool_call_id", f"messages.{i}.tool_call_id")


def openapi_schema() -> dict[str, Any]:
    return ChatCompletionRequest.model_json_schema(ref_template="#/components/schemas/{model}")
