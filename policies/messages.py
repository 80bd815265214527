"""The project's own chat messages, in OpenAI Chat Completions shape.

Every message model keeps unknown fields (``extra="allow"``) and is dumped with
``exclude_unset`` so a round-trip through rein returns exactly what the client sent.
This module imports nothing of ours: inception, refiners and middleware all share it.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Content = Union[str, list[dict[str, Any]], None]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")

    def model_post_init(self, context: Any) -> None:
        # Discriminators are always part of the wire form, even when left to their default.
        for key in ("role", "type"):
            if key in type(self).model_fields:
                self.model_fields_set.add(key)


class FunctionCall(_Open):
    name: str
    arguments: str = "{}"


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class SystemMessage(_Open):
    role: Literal["system"] = "system"
    content: Content = None


class DeveloperMessage(_Open):
    role: Literal["developer"] = "developer"
    content: Content = None


class UserMessage(_Open):
    role: Literal["user"] = "user"
    content: Content = None


class AssistantMessage(_Open):
    role: Literal["assistant"] = "assistant"
    content: Content = None
    tool_calls: list[ToolCall] | None = None


class ToolMessage(_Open):
    role: Literal["tool"] = "tool"
    tool_call_id: str
    content: Content = None


Message = Annotated[
    Union[SystemMessage, DeveloperMessage, UserMessage, AssistantMessage, ToolMessage],
    Field(discriminator="role"),
]
_messages = TypeAdapter(list[Message])


def parse_messages(raw: list[dict[str, Any]]) -> list[Message]:
    """Validate OpenAI-format dicts into typed messages (raises pydantic.ValidationError)."""
    return _messages.validate_python(raw)


def dump_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Back to OpenAI dicts; fields the client never set stay absent."""
    return [m.model_dump(exclude_unset=True, mode="json") for m in messages]


def text_of(message: Any) -> str:
    """The plain text of a message's content (text parts joined), '' when none."""
    content = getattr(message, "content", None)
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content if isinstance(p, dict))


def assistant(content: str | None = None, tool_calls: list[ToolCall] | None = None) -> AssistantMessage:
    """An assistant message with only the fields given marked as set."""
    fields: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        fields["tool_calls"] = tool_calls
    return AssistantMessage(**fields)
