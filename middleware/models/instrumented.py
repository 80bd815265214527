"""The one owner of ``chat`` spans: every model call rein makes goes through this wrapper.

The stage builder (``Engine``) wraps the agent and rein's own model once, so the agent call, the
LLM inception module, the planner and the refiners all get the same ``chat {model}`` client span
(GenAI conventions: operation, provider from the model's own ``provider``, request and response
model, token usage, finish reasons; content only with ``REIN_TRACE_CONTENT=1``). Stages never
open one themselves, and neither does the proxy's byte relay (``relay``, ``relay_stream_batches``, and
``forward`` for the other wire formats: the same span around bytes passed through, parsed only for a
recording span). Everything else (``capabilities``, ``list_models``, ``pool`` ...) is the wrapped model's::

    model = Instrumented(OpenAICompatModel("http://upstream/v1"))
    await model.complete(request)          # one span "chat upstream", with gen_ai.usage.*
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any, AsyncIterator

import orjson
from opentelemetry.context import Context

from middleware import tracing
from middleware.models.chunks import ChunkAccumulator
from policies.chat_model import ChatModel, ModelRequest, ModelResponse


class Instrumented:
    def __init__(self, model: ChatModel):
        self.model = model
        self.name = getattr(model, "name", "model")

    @classmethod
    def wrap(cls, model: ChatModel | None) -> Any:
        """``model`` wrapped once (None stays None; a wrapped model is not wrapped again)."""
        return model if model is None or isinstance(model, Instrumented) else cls(model)

    def __getattr__(self, attr: str) -> Any:  # provider, capabilities, relay, pool ...: the model's own
        return getattr(self.model, attr)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        with tracing.model_span(self.model, request) as span:
            response = await self.model.complete(request)
            if span.is_recording():
                tracing.record_usage(span, response)
        return response

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        # Not made current: a generator's context may change between yields (nothing nests under it).
        span = tracing.start_model_span(self.model, request)
        acc = ChunkAccumulator() if span.is_recording() else None
        try:
            async for chunk in self.model.stream(request):
                if acc is not None:
                    acc.add(chunk)
                yield chunk
        except BaseException as e:
            tracing.fail(span, e)
            raise
        finally:
            if acc is not None:
                tracing.record_usage(span, acc.response())
            span.end()

    async def relay(self, body: bytes, headers: dict[str, str] | None = None, *,
                    request: Any = None) -> tuple[bytes, dict[str, Any]]:
        """The model's byte relay (``capabilities.relay``) inside its ``chat`` span."""
        with tracing.model_span(self.model, request) as span:
            raw, data = await self.model.relay(body, headers)
            tracing.record_completion(span, data)
        return raw, data

    async def relay_stream_batches(self, body: bytes, headers: dict[str, str] | None = None, *,
                                   request: Any = None, parent: Context | None = None) -> AsyncIterator[list[bytes]]:
        """The model's streamed byte relay inside its ``chat`` span (a child of ``parent``); the span
        ends when the stream does, or is closed."""
        span = tracing.start_model_span(self.model, request, context=parent)
        acc = ChunkAccumulator() if span.is_recording() else None
        try:
            async for batch in self.model.relay_stream_batches(body, headers):
                if acc is not None:
                    for data in batch:
                        try:
                            acc.add(orjson.loads(data))
                        except (orjson.JSONDecodeError, AttributeError, TypeError):
                            pass  # the relay passes what it cannot read; the span just lacks it
                yield batch
        except Exception as e:  # not GeneratorExit or a cancel: a client that hung up is no failure
            tracing.fail(span, e)
            raise
        finally:
            if acc is not None:
                tracing.record_usage(span, acc.response())
            span.end()

    async def forward(self, path: str, body: bytes, headers: dict[str, str], *, stream: bool = False,
                      model: Any = None, parent: Context | None = None) -> Any:
        """The model's relay of another wire format (``forward``: ``/responses``, ``/messages``) inside
        its ``chat`` span, a child of ``parent``; a streamed answer's span ends with its last piece."""
        span = tracing.start_model_span(self.model, SimpleNamespace(model=model), context=parent)
        try:
            answer = await self.model.forward(path, body, headers, stream=stream)
        except Exception as e:
            tracing.fail(span, e)
            span.end()
            raise
        if answer.status >= 400:
            span.set_attribute("error.type", str(answer.status))
        if answer.pieces is None:
            if span.is_recording() and answer.status < 400:
                tracing.record_completion(span, _usage_as_chat(answer.body))
            span.end()
            return answer
        return answer._replace(pieces=_ending(answer.pieces, span))


def _usage_as_chat(body: bytes | None) -> dict[str, Any]:
    """A Responses or Messages answer's model and token counts, as a chat completion names them."""
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(data, dict):
        return {}
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    count = {k: v for k, v in usage.items() if isinstance(v, int) and not isinstance(v, bool)}
    return {"model": data.get("model"),
            "usage": {"prompt_tokens": count.get("input_tokens"), "completion_tokens": count.get("output_tokens")}}


async def _ending(pieces: AsyncIterator[bytes], span: Any) -> AsyncIterator[bytes]:
    try:
        async for piece in pieces:
            yield piece
    except Exception as e:  # not GeneratorExit or a cancel: a client that hung up is no failure
        tracing.fail(span, e)
        raise
    finally:
        await pieces.aclose()
        span.end()
