"""``apply_guardrail {name}`` spans straight from opentelemetry-api (inception knows no middleware)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace

tracer = trace.get_tracer("rein")


@contextmanager
def guardrail(name: str) -> Iterator[trace.Span]:
    """A detector's span; the caller sets the decision once it knows (allow when nothing found)."""
    with tracer.start_as_current_span(f"apply_guardrail {name}", kind=trace.SpanKind.INTERNAL) as span:
        span.set_attribute("gen_ai.operation.name", "apply_guardrail")
        span.set_attribute("gen_ai.security.decision.type", "allow")
        yield span


def decide(span: trace.Span, found: list[Any]) -> None:
    if found:
        span.set_attribute("gen_ai.security.decision.type", "warn")
        span.set_attribute("rein.detections", [getattr(d, "label", str(d)) for d in found])


def event(name: str, attributes: dict[str, Any] | None = None) -> None:
    trace.get_current_span().add_event(name, attributes or {})
