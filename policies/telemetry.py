"""The span conventions inception, refiners and middleware share, straight from opentelemetry-api
(it imports nothing of ours, so every package may use it).

    with guardrail("tool_failure") as span:          # apply_guardrail {name}, decision "allow"
        span.set_attribute("gen_ai.security.decision.type", "warn")
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

from opentelemetry import trace

tracer = trace.get_tracer("rein")


def content_enabled() -> bool:
    """Message content goes on spans only when the operator opts in (``REIN_TRACE_CONTENT=1``)."""
    return os.environ.get("REIN_TRACE_CONTENT", "").lower() in ("1", "true", "yes")


@contextmanager
def guardrail(name: str, decision: str = "allow", current: bool = False) -> Iterator[trace.Span]:
    """An ``apply_guardrail {name}`` span; the caller resets the decision once it knows it.
    Structural detectors take microseconds, so by default their spans are not made current
    (``current`` costs a context switch and only matters when something nests under the span)."""
    attributes = {"gen_ai.operation.name": "apply_guardrail", "gen_ai.security.decision.type": decision}
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


def event(name: str, attributes: dict[str, Any] | None = None) -> None:
    trace.get_current_span().add_event(name, attributes or {})
