"""Parse and check a chat completion request; every problem becomes a clear ProxyError."""
from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from middleware.proxy.errors import ProxyError
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


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in ("system", "user", "assistant", "tool", "developer")))


def parse_body(raw: bytes, limit: int) -> tuple[dict[str, Any], ChatCompletionRequest]:
    if len(raw) > limit:
        raise ProxyError(413, f"request body is {len(raw)} bytes; the limit is {limit}", "request_too_large")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ProxyError(400, f"request body is not valid JSON: {e}", "invalid_json") from None
    if not isinstance(data, dict):
        raise ProxyError(400, "request body must be a JSON object", "invalid_json")
    if "messages" not in data:
        raise ProxyError(400, "'messages' is required", "missing_required_parameter", "messages")
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = _where(first["loc"])
        detail = "; ".join(f"{_where(x['loc'])}: {x['msg']}" for x in e.errors()[:5])
        raise ProxyError(422, f"invalid request: {detail}", "invalid_value", where or None) from None
    check_tool_messages(request.messages)
    return data, request


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
