"""Parse and check a chat completion request; every problem becomes a clear ProxyError."""
from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from middleware.proxy.errors import ProxyError
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


def parse_body(raw: bytes) -> tuple[dict[str, Any], ChatCompletionRequest]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        if str(e).startswith("depth limit"):
            raise ProxyError(400, f"request body: JSON nested more than {MAX_DEPTH} levels deep", "json_too_deep") from None
        raise ProxyError(400, f"request body is not valid JSON: {e}", "invalid_json") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "request body must be a JSON object", "invalid_json")
    check_depth(data)
    if "messages" not in data:
        raise ProxyError(400, "'messages' is required", "missing_required_parameter", "messages")
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as e:
        detail, where = _describe(e.errors())
        raise ProxyError(422, f"invalid request: {detail}", "invalid_value", where or None) from None
    check_tool_messages(request.messages)
    return data, request


def check_depth(data: dict[str, Any]) -> None:
    """400 for JSON nested past ``MAX_DEPTH``, checked once here for every path that later
    re-serialises the body (upstream calls, the persona store, the fast path's relay alike).
    ``metadata.rein_profile`` may be a JSON string: it is read as JSON, so it is held to it too."""
    where = too_deep(data)
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
