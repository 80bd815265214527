"""Anthropic Messages request -> rein's typed request (Chat Completions shape); the reply's way
back is messages_reply.py.

``system`` becomes a system message; ``text`` and ``image`` blocks become content parts;
``tool_use`` blocks become the assistant's tool calls; each ``tool_result`` block becomes a tool
message, in order, before the rest of its user message. A result sent with ``is_error: true``
starts with ``ERROR_MARK``: the label the tool-failure detector (inception/structural.py) reads
as a failed call, and the plain way to tell a chat model the tool failed. Block fields rein does
not read (``cache_control`` ...) stay on the part and go on; so do unknown request fields.
"""
from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from middleware.proxy.errors import ProxyError
from policies.messages import AssistantMessage, FunctionCall, Message, ToolCall, ToolMessage, parse_messages
from policies.chat_model import ModelRequest

ERROR_MARK = "[error] "
CONSUMED = {"model", "messages", "system", "tools", "tool_choice", "max_tokens", "stop_sequences", "stream",
            "metadata"}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> ProxyError:
    return ProxyError(400, message, code, param)


# ---- request ---------------------------------------------------------------------------
def to_request(data: dict[str, Any], headers: dict[str, str]) -> ModelRequest:
    if not isinstance(data.get("messages"), list) or not data["messages"]:
        raise bad("messages: Field required (a non-empty list)", "messages", "missing_required_parameter")
    max_tokens = data.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise bad("max_tokens: Field required (a positive integer)", "max_tokens", "missing_required_parameter")
    messages: list[Message] = []
    system = data.get("system")
    if system is not None:
        content = collapse(blocks_in(system, "system", "system")[1]) if isinstance(system, list) else system
        if not isinstance(content, (str, list)):
            raise bad("system: must be a string or a list of text blocks", "system")
        messages += parse_messages([{"role": "system", "content": content}])
    uses: set[str] = set()
    for i, m in enumerate(data["messages"]):
        messages += message_in(m, i, uses)
    extra = {k: v for k, v in data.items() if k not in CONSUMED}
    extra["max_tokens"] = max_tokens
    if data.get("stop_sequences") is not None:
        extra["stop"] = data["stop_sequences"]
    if not isinstance(data.get("metadata") or {}, dict):
        raise bad("metadata: must be an object", "metadata")
    metadata = dict(data.get("metadata") or {})
    if metadata.get("user_id") is not None:
        extra["user"] = metadata.pop("user_id")  # the persona store keys profiles by user
    if metadata:
        extra["metadata"] = metadata
    if data.get("stream"):
        extra["stream_options"] = {"include_usage": True}
    tool_choice, parallel = tool_choice_in(data.get("tool_choice"))
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("model: must be a string", "model")
    return ModelRequest(messages=messages, model=model, tools=tools_in(data.get("tools")), tool_choice=tool_choice,
                        extra=extra, headers=headers)


def message_in(m: Any, i: int, uses: set[str]) -> list[Message]:
    """``uses``: the tool_use ids seen so far; a tool_result must answer one of them."""
    where = f"messages.{i}"
    if not isinstance(m, dict):
        raise bad(f"{where}: must be an object", where)
    role = m.get("role")
    if role not in ("user", "assistant"):
        shown = repr(role) if isinstance(role, str) or role is None else "this value"
        raise bad(f"{where}.role: {shown} is not one of user, assistant", f"{where}.role")
    extra = {k: v for k, v in m.items() if k not in ("role", "content")}
    refuse_chat_fields(extra, where, "an Anthropic message (tool calls are tool_use blocks)")
    content = m.get("content")
    try:
        if isinstance(content, str):
            return parse_messages([{"role": role, "content": content, **extra}])
        if not isinstance(content, list):
            raise bad(f"{where}.content: must be a string or a list of content blocks", f"{where}.content")
        out, parts, calls = blocks_in(content, f"{where}.content", role)
        uses.update(c.id for c in calls)
        for j, tool in enumerate(out):
            if isinstance(tool, ToolMessage) and tool.tool_call_id not in uses:
                at = f"{where}.content.{_result_index(content, j)}.tool_use_id"
                raise bad(f"{at}: no tool_use with id {tool.tool_call_id!r} comes before this tool_result", at,
                          "invalid_tool_call_id")
        if role == "assistant":
            return [AssistantMessage(content=collapse(parts) if parts else None, tool_calls=calls or None, **extra)]
        if parts or not out:
            out.append(parse_messages([{"role": "user", "content": collapse(parts), **extra}])[0])
        return out
    except ValidationError as e:
        err = e.errors()[0]
        raise bad(f"{where}: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}", where) from None


# Fields of rein's chat types that an Anthropic body must not set: passed on, they would collide with
# what the blocks map to (a TypeError), or smuggle chat-shaped tool calls past the block checks.
_CHAT_FIELDS = ("tool_calls", "tool_call_id", "function", "function_call", "role")


def refuse_chat_fields(fields: dict[str, Any], where: str, what: str) -> None:
    for key in _CHAT_FIELDS:
        if key in fields:
            raise bad(f"{where}.{key}: {key!r} is not a field of {what}", f"{where}.{key}")


def _result_index(blocks: list[Any], n: int) -> int:
    """The index among ``blocks`` of the n-th tool_result block."""
    found = [j for j, b in enumerate(blocks) if isinstance(b, dict) and b.get("type") == "tool_result"]
    return found[n] if n < len(found) else n


def blocks_in(blocks: list[Any], where: str, role: str) -> tuple[list[Message], list[dict[str, Any]], list[ToolCall]]:
    """(tool messages, content parts, tool calls) of one message's blocks."""
    tools: list[Message] = []
    parts: list[dict[str, Any]] = []
    calls: list[ToolCall] = []
    for j, b in enumerate(blocks):
        at = f"{where}.{j}"
        kind = b.get("type") if isinstance(b, dict) else None
        rest = {k: v for k, v in b.items() if k != "type"} if isinstance(b, dict) else {}
        try:
            if kind == "text":
                if not isinstance(rest.get("text"), str):
                    raise bad(f"{at}.text: a text block needs a string", f"{at}.text")
                parts.append({"type": "text", **rest})
            elif kind == "image" and role == "user":
                parts.append(image_in(rest.pop("source"), at) | rest)
            elif kind == "tool_use" and role == "assistant":
                refuse_chat_fields(rest, at, "a tool_use block")
                if not isinstance(rest.get("id"), str) or not isinstance(rest.get("name"), str):
                    raise bad(f"{at}: a tool_use block needs a string id and name", at)
                arguments = orjson.dumps(rest.pop("input", {})).decode()
                calls.append(ToolCall(id=rest.pop("id"), function=FunctionCall(name=rest.pop("name"), arguments=arguments),
                                      **rest))
            elif kind == "tool_result" and role == "user":
                refuse_chat_fields(rest, at, "a tool_result block")
                if not isinstance(rest.get("tool_use_id", ""), str):
                    raise bad(f"{at}.tool_use_id: must be a string", f"{at}.tool_use_id")
                tools.append(tool_result_in(rest, at))
            else:
                shown = kind if kind is None or isinstance(kind, str) else "a non-string"
                raise bad(f"{at}.type: {shown!r} blocks are not supported in {role} content by rein "
                          f"(text for system; text, image, tool_result for user; text, tool_use for assistant)",
                          f"{at}.type", "unsupported_block")
        except KeyError as e:
            raise bad(f"{at}: {kind} blocks need {e.args[0]!r}", f"{at}.{e.args[0]}", "missing_required_parameter") from None
    return tools, parts, calls


def collapse(parts: list[dict[str, Any]]) -> Any:
    """One plain text block is the string it holds (what every chat upstream reads)."""
    if len(parts) == 1 and parts[0].keys() == {"type", "text"}:
        return parts[0]["text"]
    return parts


def image_in(source: Any, where: str) -> dict[str, Any]:
    if isinstance(source, dict) and source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif isinstance(source, dict) and source.get("type") == "url":
        url = source.get("url")
    else:
        raise bad(f"{where}.source: an image source is base64 or url", f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def tool_result_in(block: dict[str, Any], where: str) -> ToolMessage:
    call_id = block.pop("tool_use_id")
    is_error = block.pop("is_error", False)
    content = block.pop("content", "")
    if isinstance(content, list):
        content = collapse(blocks_in(content, f"{where}.content", "user")[1])
    if is_error:
        if isinstance(content, list):
            content = [{"type": "text", "text": ERROR_MARK.rstrip()}, *content]
        else:
            content = ERROR_MARK + (content or "")
    return ToolMessage(tool_call_id=call_id, content=content, **block)


def tools_in(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad("tools: must be a list", "tools")
    out = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type", "custom") != "custom":
            kind = t.get("type") if isinstance(t, dict) else None
            raise bad(f"tools.{i}.type: {kind!r} is a server tool Anthropic runs; rein supports client tools "
                      "(name, description, input_schema) only", f"tools.{i}.type", "unsupported_tool")
        if not isinstance(t.get("name"), str) or not isinstance(t.get("input_schema"), dict):
            raise bad(f"tools.{i}: a tool needs a name and an input_schema object", f"tools.{i}")
        fn = {k: v for k, v in t.items() if k not in ("type", "input_schema")}
        out.append({"type": "function", "function": {**fn, "parameters": t["input_schema"]}})
    return out


def tool_choice_in(choice: Any) -> tuple[Any, bool | None]:
    """-> (chat tool_choice, parallel_tool_calls)."""
    if choice is None:
        return None, None
    if not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none"):
        raise bad("tool_choice: must be {'type': 'auto' | 'any' | 'tool' | 'none'}", "tool_choice")
    parallel = False if choice.get("disable_parallel_tool_use") else None
    kind = choice["type"]
    if kind == "tool":
        if not isinstance(choice.get("name"), str):
            raise bad("tool_choice.name: a 'tool' choice names the tool", "tool_choice.name")
        return {"type": "function", "function": {"name": choice["name"]}}, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[kind], parallel
