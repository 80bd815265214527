"""OpenTelemetry spans named and attributed by the GenAI semantic conventions.

Message content goes on spans only when the operator opts in (``REIN_TRACE_CONTENT=1``).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace

from policies.chat_model import provider_of  # noqa: F401  (the model says its provider: data, not its class name)
# One tracer for every package (inception and refiners use policies.telemetry's too).
from policies.telemetry import content_enabled, event, guardrail, tracer  # noqa: F401  (re-exported for the pipeline)


def start_request_span(policy: str, protocol: str | None = None) -> trace.Span:
    """The ``rein.request`` span of one proxied request, not made current (a stream outlives the
    handler: the caller ends it). Every route makes it here, so its name and attributes agree."""
    span = tracer.start_span("rein.request")
    span.set_attribute("rein.policy", policy)
    if protocol is not None:
        span.set_attribute("rein.protocol", protocol)
    return span


@contextmanager
def request_span(policy: str, protocol: str | None = None) -> Iterator[trace.Span]:
    """``start_request_span``, current and ended on exit (a request answered in one piece)."""
    with trace.use_span(start_request_span(policy, protocol), end_on_exit=True) as span:
        yield span


def start_model_span(model: Any, request: Any = None, operation: str = "chat",
                     context: Any = None) -> trace.Span:
    """A ``{operation} {model}`` client span, not made current (for streams that outlive a block)."""
    name = getattr(request, "model", None) or getattr(model, "name", "model")
    span = tracer.start_span(f"{operation} {name}", context=context, kind=trace.SpanKind.CLIENT)
    if span.is_recording():
        span.set_attribute("gen_ai.operation.name", operation)
        span.set_attribute("gen_ai.provider.name", provider_of(model))
        span.set_attribute("gen_ai.request.model", str(name))
        if content_enabled() and getattr(request, "messages", None) is not None:
            import orjson

            from policies.messages import dump_messages
            span.set_attribute("gen_ai.input.messages", orjson.dumps(dump_messages(request.messages)).decode())
    return span


def fail(span: trace.Span, error: BaseException) -> None:
    """Mark a span failed; ``error.type`` is the proxy's error code when there is one."""
    span.set_attribute("error.type", str(getattr(error, "code", None) or type(error).__qualname__))
    span.set_status(trace.Status(trace.StatusCode.ERROR, str(error)[:200]))


@contextmanager
def model_span(model: Any, request: Any = None, operation: str = "chat") -> Iterator[trace.Span]:
    span = start_model_span(model, request, operation)
    with trace.use_span(span, end_on_exit=True, record_exception=False, set_status_on_exception=False):
        try:
            yield span
        except Exception as e:
            fail(span, e)
            raise


def record_usage(span: trace.Span, response: Any) -> None:
    usage = getattr(response, "usage", None) or {}
    if usage.get("prompt_tokens") is not None:
        span.set_attribute("gen_ai.usage.input_tokens", int(usage["prompt_tokens"]))
    if usage.get("completion_tokens") is not None:
        span.set_attribute("gen_ai.usage.output_tokens", int(usage["completion_tokens"]))
    if getattr(response, "model", None):
        span.set_attribute("gen_ai.response.model", response.model)
    if getattr(response, "finish_reason", None):
        span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
    if content_enabled() and getattr(response, "message", None) is not None:
        import orjson
        span.set_attribute("gen_ai.output.messages",
                           orjson.dumps([response.message.model_dump(exclude_unset=True, mode="json")]).decode())


def record_completion(span: trace.Span, data: dict[str, Any]) -> None:
    """``record_usage`` for a raw OpenAI completion dict (the passthrough relay parses nothing else)."""
    if not span.is_recording():
        return
    usage = data.get("usage") or {}
    if usage.get("prompt_tokens") is not None:
        span.set_attribute("gen_ai.usage.input_tokens", int(usage["prompt_tokens"]))
    if usage.get("completion_tokens") is not None:
        span.set_attribute("gen_ai.usage.output_tokens", int(usage["completion_tokens"]))
    if data.get("model"):
        span.set_attribute("gen_ai.response.model", str(data["model"]))
    choices = [c for c in data.get("choices") or [] if isinstance(c, dict)]
    reasons = [str(c["finish_reason"]) for c in choices if c.get("finish_reason")]
    if reasons:
        span.set_attribute("gen_ai.response.finish_reasons", reasons)
    if content_enabled() and choices:
        import orjson
        span.set_attribute("gen_ai.output.messages", orjson.dumps([c.get("message") for c in choices]).decode())


