"""Lossless conversion between rein's messages (OpenAI shape) and LangChain messages.

OpenAI JSON -> ours -> LangChain -> ours -> OpenAI JSON returns the same JSON: fields
LangChain has no slot for ride in ``additional_kwargs`` (as langchain-openai does), the
raw ``tool_calls`` are kept there so argument strings come back byte for byte, and a
small ``__rein__`` marker remembers a content that was ``null`` or absent.

Example::

    lc = to_langchain(parse_messages([{"role": "user", "content": "hi"}]))
    assert dump_messages(from_langchain(lc)) == [{"role": "user", "content": "hi"}]
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from langchain_core.messages import (AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage,
                                     ToolMessage)

from policies.messages import AssistantMessage, Message, ToolCall, assistant, parse_messages
from policies.chat_model import ModelResponse

MARK = "__rein__"          # how content looked before LangChain forced it to a string
ROLE_KEY = "__openai_role__"  # langchain-openai's own key for "developer" system messages
_OWN = {"role", "content", "name", "tool_calls", "tool_call_id"}


def to_langchain(messages: Iterable[Message]) -> list[BaseMessage]:
    return [message_to_langchain(m) for m in messages]


def from_langchain(messages: Iterable[BaseMessage | dict[str, Any]]) -> list[Message]:
    return [message_from_langchain(m) for m in messages]


def message_to_langchain(message: Message) -> BaseMessage:
    data = message.model_dump(exclude_unset=True, mode="json")
    extra = {k: v for k, v in data.items() if k not in _OWN}
    if "content" not in data:
        extra[MARK] = {"content": "absent"}
    elif data["content"] is None:
        extra[MARK] = {"content": "null"}
    content = data.get("content") or ""
    common: dict[str, Any] = {"content": content, "additional_kwargs": extra}
    role = data["role"]
    if "name" in data and role != "tool":
        common["name"] = data["name"]
    elif "name" in data:  # LangChain fills ToolMessage.name itself; only a client's name goes back
        extra["name"] = data["name"]
    if role == "system":
        return SystemMessage(**common)
    if role == "developer":
        common["additional_kwargs"] = {**extra, ROLE_KEY: "developer"}
        return SystemMessage(**common)
    if role == "user":
        return HumanMessage(**common)
    if role == "tool":
        return ToolMessage(tool_call_id=data["tool_call_id"], **common)
    return _ai_to_langchain(message, data, common)


def _ai_to_langchain(message: AssistantMessage, data: dict[str, Any], common: dict[str, Any]) -> AIMessage:
    if "tool_calls" in data:  # raw copy: exact argument strings and unknown call fields survive
        common["additional_kwargs"]["tool_calls"] = data["tool_calls"]
    valid, invalid = [], []
    for call in message.tool_calls or []:
        try:
            args = json.loads(call.function.arguments or "{}")
        except ValueError:
            args = None
        if isinstance(args, dict):
            valid.append({"name": call.function.name, "args": args, "id": call.id, "type": "tool_call"})
        else:
            invalid.append({"name": call.function.name, "args": call.function.arguments, "id": call.id,
                            "error": "arguments are not a JSON object", "type": "invalid_tool_call"})
    return AIMessage(tool_calls=valid, invalid_tool_calls=invalid, **common)


def message_from_langchain(message: BaseMessage | dict[str, Any]) -> Message:
    if isinstance(message, dict):
        return parse_messages([message])[0]
    extra = dict(message.additional_kwargs or {})
    mark = extra.pop(MARK, None) or {}
    role_override = extra.pop(ROLE_KEY, None)
    raw_calls = extra.pop("tool_calls", None)
    if isinstance(message, SystemMessage):
        role = role_override or "system"
    elif isinstance(message, HumanMessage):
        role = "user"
    elif isinstance(message, AIMessage):
        role = "assistant"
    elif isinstance(message, ToolMessage):
        role = "tool"
    elif isinstance(message, ChatMessage):
        role = message.role
    else:
        raise TypeError(f"no OpenAI role for a LangChain {type(message).__name__}")
    data: dict[str, Any] = {"role": role, **extra}
    content = message.content
    if content == "" and mark.get("content") == "null":
        data["content"] = None
    elif not (content == "" and mark.get("content") == "absent"):
        data["content"] = content
    if message.name is not None and not isinstance(message, ToolMessage):
        data["name"] = message.name
    if isinstance(message, ToolMessage):
        data["tool_call_id"] = message.tool_call_id
    if isinstance(message, AIMessage):
        calls = _calls_from_langchain(message, raw_calls)
        if calls is not None:
            data["tool_calls"] = calls
    return parse_messages([data])[0]


def _calls_from_langchain(message: AIMessage, raw: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The OpenAI tool_calls of an AIMessage; the raw copy wins wherever it still agrees."""
    raw_by_id = {c.get("id"): c for c in raw or [] if isinstance(c, dict)}
    built: list[dict[str, Any]] = []
    for tc in message.tool_calls:
        old = raw_by_id.get(tc["id"])
        if old is not None and _same_call(old, tc["name"], tc["args"]):
            built.append(old)
        else:
            built.append(_openai_call(tc["id"], tc["name"], json.dumps(tc["args"])))
    for tc in message.invalid_tool_calls:
        old = raw_by_id.get(tc["id"])
        if old is not None and (old.get("function") or {}).get("arguments") == tc["args"]:
            built.append(old)
        else:
            built.append(_openai_call(tc["id"], tc["name"] or "", tc["args"] or ""))
    if not built:
        return raw if raw is not None and not raw else None  # an explicit [] stays []
    if raw is not None:  # keep the original order when the calls are the same set
        order = {c.get("id"): i for i, c in enumerate(raw) if isinstance(c, dict)}
        if all(c.get("id") in order for c in built):
            built.sort(key=lambda c: order[c.get("id")])
    return built


def _same_call(raw: dict[str, Any], name: str, args: dict[str, Any]) -> bool:
    fn = raw.get("function") or {}
    try:
        return fn.get("name") == name and json.loads(fn.get("arguments") or "{}") == args
    except ValueError:
        return False


def _openai_call(id: str | None, name: str, arguments: str) -> dict[str, Any]:
    return ToolCall.model_validate({"id": id or "", "type": "function",
                                    "function": {"name": name, "arguments": arguments}}
                                   ).model_dump(exclude_unset=True, mode="json")


def as_rein_messages(messages: Iterable[Any]) -> list[Message]:
    """Any mix of rein messages, OpenAI dicts and LangChain messages, as rein messages."""
    out: list[Message] = []
    for m in messages:
        if isinstance(m, BaseMessage) or isinstance(m, dict):
            out.append(message_from_langchain(m))
        elif hasattr(m, "role") and hasattr(m, "model_dump"):
            out.append(m if type(m).__module__ == "policies.messages" else parse_messages([m.model_dump()])[0])
        else:
            raise TypeError(f"not a chat message: {type(m).__name__}")
    return out


def reply_response(reply: AIMessage | None, model: str = "") -> ModelResponse:
    """A LangChain reply (None: there was none) as a ModelResponse, usage and model name kept."""
    if reply is None:
        return ModelResponse(message=assistant(""), model=model)
    message = message_from_langchain(reply)
    if not isinstance(message, AssistantMessage):
        raise TypeError(f"expected an AI reply, got a {type(reply).__name__}")
    usage = None
    if reply.usage_metadata:
        u = reply.usage_metadata
        usage = {"prompt_tokens": u.get("input_tokens", 0), "completion_tokens": u.get("output_tokens", 0),
                 "total_tokens": u.get("total_tokens", 0)}
    return ModelResponse(message=message, model=str(reply.response_metadata.get("model_name") or model),
                         finish_reason="tool_calls" if message.tool_calls else "stop", usage=usage)
