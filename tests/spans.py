"""Spans for assertions: an in-memory exporter on the process's one SDK tracer provider.

    _exporter = recording()      # at module level; clear it before the code under test runs
"""
from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


def recording() -> InMemorySpanExporter:
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):  # set once per process; later calls are ignored
        trace.set_tracer_provider(TracerProvider())
        current = trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    current.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter
