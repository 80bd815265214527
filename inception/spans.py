"""``apply_guardrail {name}`` spans straight from opentelemetry-api (inception knows no middleware)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace

tracer = trace.get_tracer("rein")


@contextmanager
def guardrail(name: str, current: bool = False) -> Iterator[trace.Span]:
    """A detector's span; the caller sets the decision once it knows (allow when nothing found).
    Structural detectors take microseconds, so their spans are not made current (``current``
    costs a context switch and only matters when something nests under the span)."""
    attributes = {"gen_ai.operation.name": "apply_guardrail", "gen_ai.security.decision.type": "allow"}
    if current:
        with tracer.start_as_current_span(f"apply_guardrail {name}", kind=trace.SpanKind.INTERNAL,
                                          attributes=attributes) as span:
            yield span
        return
    span = tracer.start_span(f"apply_guardrail {name}", kind=trace.SpanKind.INTERNAL, attributes=attributes)
    try:
        yield span
    finally:
        span.end()


def decide(span: trace.Span, found: list[Any]) -> None:
    if found:
        span.set_attribute("gen_ai.security.decision.type", "warn")
        span.set_attribute("rein.detections", [getattr(d, "label", str(d)) for d in found])


def event(name: str, attributes: dict[str, Any] | None = None) -> None:
    trace.get_current_span().add_event(name, attributes or {})
