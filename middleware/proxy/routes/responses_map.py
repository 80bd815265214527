"""OpenAI Responses request -> rein's typed request (Chat Completions shape).

Input items become messages: ``message`` items by role, ``function_call`` items join the
assistant message before them as tool calls, ``function_call_output`` items become tool
messages. Item ``id``/``status`` are Responses bookkeeping (rein's own output carries new ones);
every other field rein does not know stays on the message, part or request and goes on.
The reply's way back (a response object, or its stream events) is responses_reply.py.
"""
from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from middleware.proxy.errors import ProxyError
from policies.messages import AssistantMessage, FunctionCall, Message, ToolCall, ToolMessage, parse_messages
from policies.chat_model import ModelRequest

ROLES = ("user", "system", "developer", "assistant")
_BOOKKEEPING = ("type", "id", "status")
# Fields rein reads itself; everything else in the body goes on to the upstream unchanged.
CONSUMED = {"input", "instructions", "tools", "tool_choice", "text", "max_output_tokens", "stream",
            "previous_response_id", "store", "include", "truncation", "reasoning", "model", "stream_options"}
# Echoed into the response object as sent (OpenAI's defaults when absent).
ECHO_DEFAULTS = {"instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": None,
                 "top_p": None, "tool_choice": "auto", "tools": [], "max_output_tokens": None,
                 "text": {"format": {"type": "text"}}, "truncation": "disabled", "reasoning": None, "user": None}
# Features that need OpenAI's own servers: refused plainly rather than quietly ignored.
REFUSED = {"conversation": "use previous_response_id (with a response store) or send the whole input",
           "background": "rein answers in the foreground only",
           "prompt": "stored prompt templates live on OpenAI's servers; send instructions and input instead"}


def bad(message: str, param: str | None = None, code: str = "invalid_value") -> ProxyError:
    return ProxyError(400, message, code, param)


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


# ---- request ---------------------------------------------------------------------------
def input_items(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's ``input`` as a list of items (a string is one user message)."""
    value = data.get("input")
    if value is None:
        raise bad("'input' is required", "input", "missing_required_parameter")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if not isinstance(value, list) or not all(isinstance(i, dict) for i in value):
        raise bad("'input' must be a string or a list of items", "input")
    return value


def to_request(data: dict[str, Any], items: list[dict[str, Any]], headers: dict[str, str]) -> ModelRequest:
    for key, why in REFUSED.items():
        if data.get(key) not in (None, False):
            raise bad(f"'{key}' is not supported by rein: {why}", key, "unsupported_parameter")
    messages: list[Message] = []
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad("'instructions' must be a string", "instructions")
        messages.append(parse_messages([{"role": "system", "content": instructions}])[0])
    messages += messages_of(items)
    if not messages:
        raise bad("'input' is empty", "input")
    extra = {k: v for k, v in data.items() if k not in CONSUMED}
    if data.get("max_output_tokens") is not None:
        extra["max_tokens"] = data["max_output_tokens"]
    if isinstance(data.get("reasoning"), dict) and data["reasoning"].get("effort"):
        extra["reasoning_effort"] = data["reasoning"]["effort"]
    response_format, verbosity = text_format(data.get("text"))
    if verbosity is not None:
        extra["verbosity"] = verbosity
    if data.get("stream"):
        extra["stream_options"] = {"include_usage": True}  # response.completed carries usage
    tools = tools_in(data.get("tools"))
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("'model' must be a string", "model")
    return ModelRequest(messages=messages, model=model, tools=tools, tool_choice=tool_choice_in(data.get("tool_choice")),
                        response_format=response_format, extra=extra, headers=headers)


def messages_of(items: list[dict[str, Any]]) -> list[Message]:
    out: list[Message] = []
    calls_seen: set[str] = set()
    for i, item in enumerate(items):
        kind = item.get("type") or ("message" if "role" in item else None)
        extra = {k: v for k, v in item.items() if k not in _BOOKKEEPING}
        try:
            if kind == "message":
                role = extra.pop("role", None)
                if role not in ROLES:
                    shown = repr(role) if isinstance(role, str) or role is None else "this value"
                    raise bad(f"input.{i}.role: {shown} is not one of {', '.join(ROLES)}", f"input.{i}.role")
                content = parts_in(extra.pop("content", None), f"input.{i}.content")
                out.append(parse_messages([{"role": role, "content": content, **extra}])[0])
            elif kind == "function_call":
                call_id, name = extra.pop("call_id"), extra.pop("name")
                _strings_at(i, call_id=call_id, name=name)
                _no_chat_fields(extra, i, kind)
                arguments = extra.pop("arguments", None) or "{}"
                call = ToolCall(id=call_id, function=FunctionCall(name=name, arguments=arguments), **extra)
                calls_seen.add(call_id)
                last = out[-1] if out else None
                if isinstance(last, AssistantMessage):  # parallel calls, or text then calls: one turn
                    last.tool_calls = [*(last.tool_calls or []), call]
                else:
                    out.append(AssistantMessage(content=None, tool_calls=[call]))
            elif kind == "function_call_output":
                call_id = extra.pop("call_id")
                _strings_at(i, call_id=call_id)
                _no_chat_fields(extra, i, kind)
                if call_id not in calls_seen:
                    raise bad(f"input.{i}.call_id: no function_call with call_id {call_id!r} comes before it",
                              f"input.{i}.call_id", "invalid_tool_call_id")
                out.append(ToolMessage(tool_call_id=call_id, content=parts_in(extra.pop("output"), f"input.{i}.output"),
                                       **extra))
            else:
                raise bad(f"input.{i}.type: {kind!r} items are not supported by rein (message, function_call, "
                          "function_call_output are)", f"input.{i}.type", "unsupported_item")
        except KeyError as e:
            raise bad(f"input.{i}: {kind} items need {e.args[0]!r}", f"input.{i}.{e.args[0]}",
                      "missing_required_parameter") from None
        except (ValidationError, TypeError) as e:
            raise bad(f"input.{i}: {_first_error(e)}", f"input.{i}") from None
    return out


def _strings_at(i: int, **fields: Any) -> None:
    for key, value in fields.items():
        if not isinstance(value, str):
            raise bad(f"input.{i}.{key}: must be a string", f"input.{i}.{key}")


# Fields of rein's chat types an item must not set: they would collide with what the item maps to.
_CHAT_FIELDS = ("tool_calls", "tool_call_id", "function", "role", "content")


def _no_chat_fields(extra: dict[str, Any], i: int, kind: str) -> None:
    for key in _CHAT_FIELDS:
        if key in extra:
            raise bad(f"input.{i}.{key}: {key!r} is not a field of a {kind} item", f"input.{i}.{key}")


def parts_in(content: Any, where: str) -> Any:
    """Responses content parts -> chat content (one plain text part becomes a string)."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad(f"{where}: must be a string or a list of content parts", where)
    parts = [part_in(p, f"{where}.{j}") for j, p in enumerate(content)]
    if len(parts) == 1 and parts[0].keys() == {"type", "text"} and parts[0]["type"] == "text":
        return parts[0]["text"]
    return parts


def part_in(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise bad(f"{where}: a content part must be an object", where)
    kind = part.get("type")
    rest = {k: v for k, v in part.items() if k != "type"}
    if kind in ("input_text", "output_text"):
        for empty in ("annotations", "logprobs"):  # an empty list says nothing: not carried
            if rest.get(empty) == []:
                rest.pop(empty)
        return {"type": "text", **rest}
    if kind == "input_image":
        image = {k: rest.pop(k) for k in ("detail",) if k in rest}
        if "image_url" in rest:
            image["url"] = rest.pop("image_url")
        elif "file_id" in rest:
            image["file_id"] = rest.pop("file_id")
        return {"type": "image_url", "image_url": image, **rest}
    if kind == "input_file":
        file = {k: rest.pop(k) for k in ("file_id", "file_data", "filename", "file_url") if k in rest}
        return {"type": "file", "file": file, **rest}
    return part  # refusal and parts rein does not know go on as they are


def tools_in(tools: Any) -> list[dict[str, Any]] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise bad("'tools' must be a list", "tools")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
            raise bad(f"tools.{i}: {kind!r} tools run on OpenAI's servers; rein supports function tools only",
                      f"tools.{i}.type", "unsupported_tool")
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise bad(f"tools.{i}.name: a function tool needs a name", f"tools.{i}.name", "missing_required_parameter")
        out.append({"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}})
    return out


def tool_choice_in(choice: Any) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        return {"type": "function", "function": {"name": choice["name"]}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        listed = choice.get("tools") or []
        if not isinstance(listed, list) or not all(isinstance(t, dict) and isinstance(t.get("name"), str)
                                                   for t in listed):
            raise bad("tool_choice.tools: an allowed_tools choice lists tools as objects with a name",
                      "tool_choice.tools")
        tools = [{"type": "function", "function": {"name": t["name"]}} for t in listed]
        return {"type": "allowed_tools", "allowed_tools": {"mode": choice.get("mode", "auto"), "tools": tools}}
    shown = repr(choice) if isinstance(choice, str) else "this value"
    raise bad(f"tool_choice: {shown} is not supported (auto, none, required, a function by name, or allowed_tools)",
              "tool_choice")


def text_format(text: Any) -> tuple[dict[str, Any] | None, Any]:
    """``text`` -> (chat response_format, verbosity)."""
    if text is None:
        return None, None
    if not isinstance(text, dict):
        raise bad("'text' must be an object", "text")
    fmt = text.get("format")
    if fmt is not None and not isinstance(fmt, dict):
        raise bad("text.format: must be an object such as {\"type\": \"json_object\"}", "text.format")
    if fmt is None or fmt.get("type") == "text":
        return None, text.get("verbosity")
    if fmt.get("type") == "json_object":
        return {"type": "json_object"}, text.get("verbosity")
    if fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise bad("text.format.schema: a json_schema format needs a schema object", "text.format.schema")
        return {"type": "json_schema", "json_schema": {k: v for k, v in fmt.items() if k != "type"}}, text.get("verbosity")
    shown = repr(fmt.get("type")) if isinstance(fmt.get("type"), (str, type(None))) else "this value"
    raise bad(f"text.format.type: {shown} is not one of text, json_object, json_schema", "text.format.type")


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        return f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
    return "an item of this type does not take these fields"  # a TypeError's own words name rein's classes


def echo_of(data: dict[str, Any]) -> dict[str, Any]:
    return {key: data.get(key, default) if data.get(key) is not None else default
            for key, default in ECHO_DEFAULTS.items()}
