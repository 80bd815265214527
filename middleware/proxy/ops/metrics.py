"""rein's OpenTelemetry metrics, exposed in Prometheus format on ``/metrics`` by ``Metrics``.

Instruments: ``rein.requests`` and ``rein.errors`` (by route and status), ``rein.added_latency``
(ms rein spent on top of the upstream), ``rein.detections`` (by error type),
``rein.refinements`` (by refiner), ``rein.incidents`` (failures the agent reported, by tool/kind)
and ``rein.decision_log.lost`` (turns the decision log could not write, read from the log when
scraped). One MeterProvider per process, read by a Prometheus reader on
a private registry; with ``OTEL_EXPORTER_OTLP_ENDPOINT`` set, the same metrics (and spans) are
also pushed to an OpenTelemetry collector, which is how several workers add up.
"""
from __future__ import annotations

import os
from typing import Any, Iterable

import orjson
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

# rein's own overhead is sub-millisecond on the fast path: buckets start well below 1 ms.
LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_TRAILER = b": rein "


class Instruments:
    def __init__(self, provider: MeterProvider):
        meter = provider.get_meter("rein")
        self.requests = meter.create_counter("rein.requests", unit="{request}", description="HTTP requests answered")
        self.errors = meter.create_counter("rein.errors", unit="{request}",
                                           description="requests answered with an error, or streams that ended in one")
        self.added_latency = meter.create_histogram("rein.added_latency", unit="ms",
                                                    description="time rein added on top of the upstream")
        self.detections = meter.create_counter("rein.detections", unit="{detection}",
                                               description="dialogue errors diagnosed, by type")
        self.refinements = meter.create_counter("rein.refinements", unit="{refinement}",
                                                description="refiners that changed a reply, by refiner")
        self.incidents = meter.create_counter("rein.incidents", unit="{incident}",
                                              description="failures the agent reported (report_internal_error), by tool/kind")
        # Decision logs write off the request's path, so a failed write is seen nowhere else: each
        # log's count of lost turns is read when /metrics is scraped.
        self.decision_logs: list[Any] = []
        meter.create_observable_counter("rein.decision_log.lost", callbacks=[self._lost], unit="{turn}",
                                        description="turns the decision log could not write (after a retry)")

    def watch(self, decision_log: Any) -> None:
        if all(log is not decision_log for log in self.decision_logs):
            self.decision_logs.append(decision_log)

    def _lost(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(sum(log.lost for log in self.decision_logs))]

    def response_headers(self, route: str, headers: Iterable[tuple[bytes, bytes]]) -> None:
        for key, value in headers:
            if key == b"x-rein-overhead-ms":
                try:
                    self.added_latency.record(float(value), {"http.route": route})
                except ValueError:
                    pass
            elif key == b"x-rein-diagnosis":
                self._count(self.detections, value.decode("latin-1"), "rein.error.type")
            elif key == b"x-rein-refined":
                self._count(self.refinements, value.decode("latin-1"), "rein.refiner")
            elif key == b"x-rein-incident":
                self._count(self.incidents, value.decode("latin-1"), "rein.incident")

    def body_piece(self, body: bytes, seen: dict[str, Any]) -> None:
        """Streams say what was refined in a closing comment and report failures as an error event."""
        if body.startswith(_TRAILER):
            at = 0
        else:  # events that were ready together go out in one write: the trailer may come after chunks
            at = body.find(b"\n\n" + _TRAILER)
            at = at + 2 if at >= 0 else -1
        if at >= 0:
            try:
                summary = orjson.loads(body[at + len(_TRAILER):].split(b"\n", 1)[0])
            except orjson.JSONDecodeError:
                return
            if isinstance(summary, dict) and summary.get("x-rein-refined"):
                self._count(self.refinements, str(summary["x-rein-refined"]), "rein.refiner")
            if isinstance(summary, dict) and summary.get("x-rein-incident"):
                self._count(self.incidents, str(summary["x-rein-incident"]), "rein.incident")
        elif body.startswith(b'data: {"error"'):
            seen["stream_error"] = True

    def finished(self, route: str, status: int, stream_error: bool) -> None:
        attrs = {"http.route": route, "http.response.status_code": status}
        self.requests.add(1, attrs)
        if (status >= 400 and status != 499) or stream_error:  # 499: the client hung up, nothing failed here
            self.errors.add(1, {**attrs, "error.type": str(status) if status >= 400 else "stream_error"})

    @staticmethod
    def _count(counter: Any, value: str, attribute: str) -> None:
        for name in value.split(","):
            name = name.strip()
            if name and name != "none":
                counter.add(1, {attribute: name})


_state: dict[str, Any] = {}


def instruments() -> Instruments:
    """The process-wide instruments (created on first use)."""
    if "instruments" not in _state:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry

        registry = CollectorRegistry()
        readers: list[Any] = [PrometheusMetricReader(registry=registry)]
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            readers.append(_otlp_reader())
        view = View(instrument_name="rein.added_latency",
                    aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS))
        provider = MeterProvider(metric_readers=readers, views=[view], resource=_resource())
        _state.update(registry=registry, provider=provider, instruments=Instruments(provider))
    return _state["instruments"]


def render_metrics() -> tuple[bytes, str]:
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    instruments()
    return generate_latest(_state["registry"]), CONTENT_TYPE_LATEST


def _resource() -> Resource:
    return Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "rein")})


def _otlp_reader() -> Any:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    return PeriodicExportingMetricReader(OTLPMetricExporter())


def setup_tracing() -> bool:
    """Send spans to the collector named by ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the compose file and
    the chart set it). Off when unset, or when the host application configured tracing itself."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or isinstance(trace.get_tracer_provider(), TracerProvider):
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=_resource())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


class Metrics:
    """Serves ``GET /metrics`` and records every request from what the response says: status,
    ``x-rein-overhead-ms`` (rein's added latency), ``x-rein-diagnosis`` and ``x-rein-refined``
    (for streams, the closing ``: rein {...}`` comment). No request content is read."""

    def __init__(self, app: Any, meters: Instruments | None = None):
        self.app = app
        self.meters = meters or instruments()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            body, content_type = render_metrics()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", content_type.encode())]})
            return await send({"type": "http.response.body", "body": body})
        route = _route(scope["path"])
        seen: dict[str, Any] = {"status": 500, "stream_error": False, "left": False, "started": False}

        async def listen() -> Any:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen["left"] = True
            return message

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["started"] = not seen["left"]
                self.meters.response_headers(route, message.get("headers", ()))
            elif message["type"] == "http.response.body":
                self.meters.body_piece(message.get("body", b""), seen)
            await send(message)

        try:
            await self.app(scope, listen, watch)
        finally:
            # A client that hung up before its answer began is no server error: 499, as nginx logs it.
            status = CLIENT_CLOSED if seen["left"] and not seen["started"] else seen["status"]
            self.meters.finished(route, status, seen["stream_error"])


CLIENT_CLOSED = 499
_ROUTES = frozenset({"/v1/chat/completions", "/v1/models", "/v1/responses", "/v1/messages", "/v1/messages/count_tokens"})


def _route(path: str) -> str:
    """A low-cardinality label: user ids and response ids in paths must not become metric series."""
    if path in _ROUTES:
        return path
    if path.startswith("/v1/rein/profiles/"):
        return "/v1/rein/profiles/{user}"
    if path.startswith("/v1/responses/"):
        return "/v1/responses/{response_id}"
    return "other"
