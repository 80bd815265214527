"""Test doubles that ship with rein: use them instead of network mocks.

Example::

    model = ScriptedModel(["Hello!", tool_call("get_order", {"id": "A1"})])
    await model.complete(ModelRequest(messages=[...]))   # -> "Hello!"
    model.requests[0].messages                           # what it was asked
"""
from __future__ import annotations

import asyncio
import inspect
import itertools
import json
from typing import Any, AsyncIterator, Callable, Union

from middleware.models.chunks import response_chunks
from policies.messages import AssistantMessage, FunctionCall, ToolCall, assistant
from policies.chat_model import ModelError, ModelRequest, ModelResponse

Reply = Union[str, AssistantMessage, ModelResponse, dict, Exception, list]
_ids = itertools.count(1)


def tool_call(name: str, arguments: dict[str, Any] | str | None = None, id: str | None = None) -> AssistantMessage:
    """An assistant message that calls one tool."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
    call = ToolCall(id=id or f"call_{next(_ids)}", type="function", function=FunctionCall(name=name, arguments=args))
    return assistant(None, [call])


def as_response(reply: Reply, model: str) -> ModelResponse:
    if isinstance(reply, ModelResponse):
        return reply
    if isinstance(reply, str):
        message = assistant(reply)
    elif isinstance(reply, dict):
        message = AssistantMessage.model_validate({"role": "assistant", **reply})
    elif isinstance(reply, AssistantMessage):
        message = reply
    else:
        raise TypeError(f"cannot turn {type(reply).__name__} into a model reply")
    finish = "tool_calls" if message.tool_calls else "stop"
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    return ModelResponse(message=message, model=model, finish_reason=finish, usage=usage)


class ScriptedModel:
    """Replays replies in order and records every request.

    A reply is text, an assistant message, a response, an exception (raised), or — for
    ``stream`` — a list of raw chunk dicts sent as they are. When the script runs out,
    the last reply repeats (``cycle=True``) or a ModelError is raised.
    """

    provider = "rein.test"

    def __init__(self, replies: list[Reply], name: str = "scripted", cycle: bool = False,
                 delay: float = 0.0):
        self.name = name
        self.replies = list(replies)
        self.cycle = cycle
        self.delay = delay
        self.requests: list[ModelRequest] = []

    def _next(self, request: ModelRequest) -> Reply:
        self.requests.append(request)
        if not self.replies:
            raise ModelError("scripted model has no reply left", 502)
        return self.replies[0] if self.cycle and len(self.replies) == 1 else self.replies.pop(0)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        reply = self._next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, list):
            from middleware.models.chunks import ChunkAccumulator
            return ChunkAccumulator().extend(reply).response()
        return as_response(reply, self.name)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        reply = self._next(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if isinstance(reply, Exception):
            raise reply
        chunks = reply if isinstance(reply, list) else response_chunks(as_response(reply, self.name))
        for c in chunks:
            if isinstance(c, Exception):
                raise c
            yield c
            await asyncio.sleep(0)


class FunctionModel:
    """A Python function (sync or async) decides each reply from the request."""

    provider = "rein.test"

    def __init__(self, fn: Callable[[ModelRequest], Any], name: str = "function"):
        self.fn = fn
        self.name = name
        self.requests: list[ModelRequest] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.requests.append(request)
        reply = self.fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return as_response(reply, self.name)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        for c in response_chunks(await self.complete(request)):
            yield c
