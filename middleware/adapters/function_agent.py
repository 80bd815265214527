"""A user's agent function as a ChatModel, so the pipeline can run its stages around it.

The function takes OpenAI-format messages (and ``tools=`` when it has that parameter) and
returns text, an OpenAI assistant message dict, a rein ``AssistantMessage``, a LangChain
``AIMessage``, an openai ``ChatCompletion``/``ChatCompletionMessage``, or a ``ModelResponse``.
``reshape`` turns rein's final message back into what the function returned.

Example::

    agent = FunctionAgent(lambda messages: "hello")
    (await agent.complete(ModelRequest(messages=[UserMessage(content="hi")]))).message.content
"""
from __future__ import annotations

import inspect
from contextvars import ContextVar
from typing import Any, AsyncIterator, Callable

from langchain_core.messages import BaseMessage

from middleware.adapters.isolation import CallerContext
from middleware.adapters.lc_messages import message_from_langchain, message_to_langchain
from middleware.models.chunks import response_chunks
from policies.messages import AssistantMessage, assistant, text_of
from policies.chat_model import ModelRequest, ModelResponse


class Call:
    """One guarded call: extra arguments for the function, its context, what it returned."""

    def __init__(self, args: tuple, kwargs: dict[str, Any], caller: CallerContext):
        self.args = args
        self.kwargs = kwargs
        self.caller = caller
        self.returned: list[Any] = []


current_call: ContextVar[Call | None] = ContextVar("rein_current_call", default=None)


class FunctionAgent:
    """The ChatModel over an agent function (one per guarded function; calls may overlap)."""

    def __init__(self, fn: Callable[..., Any], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "agent")
        try:
            self.takes_tools = "tools" in inspect.signature(fn).parameters
        except (TypeError, ValueError):
            self.takes_tools = False

    async def complete(self, request: ModelRequest) -> ModelResponse:
        call = current_call.get() or Call((), {}, CallerContext())
        kwargs = dict(call.kwargs)
        if self.takes_tools:
            kwargs["tools"] = request.tools
        messages = [m.model_dump(exclude_unset=True, mode="json") for m in request.messages]
        result = await call.caller.run(self.fn, messages, *call.args, **kwargs)
        call.returned.append(result)
        if isinstance(result, ModelResponse):
            return result
        message = as_assistant(result)
        return ModelResponse(message=message, model=self.name,
                             finish_reason="tool_calls" if message.tool_calls else "stop")

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        for c in response_chunks(await self.complete(request)):
            yield c


def as_assistant(result: Any) -> AssistantMessage:
    """An agent function's return value as a rein assistant message."""
    if isinstance(result, AssistantMessage):
        return result
    if isinstance(result, ModelResponse):
        return result.message
    if isinstance(result, str):
        return assistant(result)
    if isinstance(result, BaseMessage):
        message = message_from_langchain(result)
        if isinstance(message, AssistantMessage):
            return message
    elif isinstance(result, dict):
        return AssistantMessage.model_validate({"role": "assistant", **result})
    elif hasattr(result, "model_dump"):  # openai ChatCompletion / ChatCompletionMessage
        data = result.model_dump(exclude_none=True)
        if data.get("choices"):
            data = data["choices"][0]["message"]
        return AssistantMessage.model_validate({"role": "assistant", **data})
    raise TypeError(f"an agent function must return text or an assistant message, not {type(result).__name__}")


def reshape(original: Any, final: AssistantMessage) -> Any:
    """rein's final message in the form the function returned (the original when unchanged)."""
    unchanged = as_assistant(original).model_dump(exclude_unset=True) == final.model_dump(exclude_unset=True)
    if unchanged or original is None:
        return original if original is not None else final
    if isinstance(original, str):
        return text_of(final)
    if isinstance(original, AssistantMessage):
        return final
    if isinstance(original, ModelResponse):
        return original.model_copy(update={"message": final, "finish_reason": _finish(final)})
    if isinstance(original, BaseMessage):
        return message_to_langchain(final).model_copy(update={"id": original.id,
                                                              "response_metadata": original.response_metadata})
    if isinstance(original, dict):
        return final.model_dump(exclude_unset=True, mode="json")
    data = original.model_dump()
    if "choices" in data:  # a whole completion: swap its first message
        choice = {**data["choices"][0], "message": final.model_dump(exclude_unset=True, mode="json"),
                  "finish_reason": _finish(final)}
        return type(original).model_validate({**data, "choices": [choice, *data["choices"][1:]]})
    return type(original).model_validate(final.model_dump(exclude_unset=True, mode="json"))


def _finish(message: AssistantMessage) -> str:
    return "tool_calls" if message.tool_calls else "stop"
