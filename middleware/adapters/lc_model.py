"""Any rein ChatModel as a LangChain chat model, so LangChain agents can run on it.

Example::

    from langchain.agents import create_agent
    llm = LangChainChatModel(chat_model=ScriptedModel([tool_call("add", {"a": 1}), "2"]))
    agent = create_agent(llm, tools=[add])
"""
from __future__ import annotations

from typing import Any, AsyncIterator, Callable, Iterator, Sequence

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict

from middleware.adapters.lc_messages import from_langchain, message_to_langchain
from middleware.adapters.sync import run_sync
from policies.chat_model import ModelRequest, ModelResponse

_REQUEST_FIELDS = {"tools", "tool_choice", "response_format", "model", "timeout"}


class LangChainChatModel(BaseChatModel):
    """Wraps one of rein's ``ChatModel`` objects (``chat_model``) as a ``BaseChatModel``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    chat_model: Any  # a policies.chat_model.ChatModel (Any: protocols do not validate as fields)

    @property
    def _llm_type(self) -> str:
        return "rein-" + getattr(self.chat_model, "name", "model")

    def bind_tools(self, tools: Sequence[dict[str, Any] | type | Callable | Any], *,
                   tool_choice: str | dict[str, Any] | None = None,
                   **kwargs: Any) -> Runnable[Any, AIMessage]:
        bound: dict[str, Any] = {"tools": [convert_to_openai_tool(t) for t in tools], **kwargs}
        if tool_choice is not None:
            bound["tool_choice"] = _openai_tool_choice(tool_choice)
        return self.bind(**bound)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        response = await self.chat_model.complete(_request(messages, stop, kwargs))
        return ChatResult(generations=[ChatGeneration(message=_ai_message(response))],
                          llm_output={"model_name": response.model})

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        return run_sync(self._agenerate(messages, stop, None, **kwargs))

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async for c in self.chat_model.stream(_request(messages, stop, kwargs)):
            piece = _chunk_message(c)
            if piece is None:
                continue
            if run_manager and isinstance(piece.content, str) and piece.content:
                await run_manager.on_llm_new_token(piece.content)
            yield ChatGenerationChunk(message=piece)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        # Whole-then-yield keeps the sync path a thin wrapper over the async one.
        async def collect() -> list[ChatGenerationChunk]:
            return [c async for c in self._astream(messages, stop, None, **kwargs)]

        yield from run_sync(collect())


def _request(messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> ModelRequest:
    extra = {k: v for k, v in kwargs.items() if k not in _REQUEST_FIELDS}
    if stop:
        extra["stop"] = stop
    return ModelRequest(messages=from_langchain(messages), extra=extra,
                        **{k: v for k, v in kwargs.items() if k in _REQUEST_FIELDS})


def _openai_tool_choice(choice: str | dict[str, Any]) -> str | dict[str, Any]:
    if isinstance(choice, dict) or choice in ("auto", "none", "required"):
        return choice
    if choice == "any":
        return "required"
    return {"type": "function", "function": {"name": choice}}


def _ai_message(response: ModelResponse) -> AIMessage:
    message = message_to_langchain(response.message)
    metadata = {"model_name": response.model, "finish_reason": response.finish_reason}
    usage = _usage(response.usage)
    return message.model_copy(update={"response_metadata": metadata, "usage_metadata": usage})


def _usage(usage: dict[str, Any] | None) -> dict[str, int] | None:
    if not usage:
        return None
    inp, out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"input_tokens": inp, "output_tokens": out, "total_tokens": int(usage.get("total_tokens") or inp + out)}


def _chunk_message(c: dict[str, Any]) -> AIMessageChunk | None:
    """One OpenAI ``chat.completion.chunk`` as a LangChain message chunk."""
    choices = c.get("choices") or []
    usage = _usage(c.get("usage"))
    if not choices:
        return AIMessageChunk(content="", usage_metadata=usage) if usage else None
    delta = choices[0].get("delta") or {}
    calls = [{"index": tc.get("index", 0), "id": tc.get("id"), "type": "tool_call_chunk",
              "name": (tc.get("function") or {}).get("name"),
              "args": (tc.get("function") or {}).get("arguments")} for tc in delta.get("tool_calls") or []]
    metadata = {"finish_reason": choices[0]["finish_reason"]} if choices[0].get("finish_reason") else {}
    if c.get("model"):
        metadata["model_name"] = c["model"]
    return AIMessageChunk(content=delta.get("content") or "", tool_call_chunks=calls,
                          response_metadata=metadata, usage_metadata=usage)


__all__ = ["LangChainChatModel"]
