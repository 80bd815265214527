"""The OpenAI-compatible proxy: FastAPI routes over the shared engine."""
from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterator

import orjson
from fastapi import FastAPI, Request
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from middleware import tracing
from middleware.redact import redact
from middleware.rule_modes import headers as rule_headers
from middleware.config import Settings
from middleware.engine import Engine
from middleware.incidents import header_value
from middleware.models.chunks import completion_json
from middleware.models.openai_compat import WireBody
from middleware.decisions import ui as decisions_ui
from middleware.proxy import admin, gc_schedule, loop_probe, ops, protocols
from middleware.proxy.errors import ProxyError, error_response, sse_error
from middleware.proxy.limits import off_loop
from middleware.proxy.ops_stream import Detached
from middleware.proxy.ready import Readiness
from middleware.proxy.validate import ChatCompletionRequest, openapi_schema, parse_body
from policies.loader import PolicyError, shipped
from policies.chat_model import ModelError, ModelRequest, capabilities_of

log = logging.getLogger("rein.proxy")
_KNOWN = {"messages", "tools", "tool_choice", "response_format", "stream", "model"}
_SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}


def _ms(start: float, minus: float = 0.0) -> str:
    return f"{max(0.0, (time.perf_counter() - start) * 1000 - minus):.3f}"


def model_request(data: dict[str, Any], req: ChatCompletionRequest, headers: dict[str, str]) -> ModelRequest:
    return ModelRequest(
        messages=req.messages, model=req.model,
        # The validated tools dumped back are the client's dicts: take those (14 tool specs cost 0.1 ms to dump).
        tools=data["tools"] if req.tools is not None else None,
        tool_choice=data.get("tool_choice"), response_format=data.get("response_format"),
        extra={k: v for k, v in data.items() if k not in _KNOWN}, headers=headers)


def pack_headers(request: Request, pipeline: Any) -> dict[str, str]:
    """The request headers the policy reads (e.g. its action rules' "now"); never sent upstream."""
    return {h: request.headers[h] for h in pipeline.reads_headers if h in request.headers}


class ChatHandler:
    """POST /v1/chat/completions: validate, pick the policy's pipeline, answer or stream."""

    def __init__(self, engine: Engine, settings: Settings):
        self.engine = engine
        self.settings = settings
        # Clients pick among shipped packs and the operator's own; never an arbitrary server path.
        self.allowed_policies = set(shipped()) | {settings.policy}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Mounted as a plain ASGI route: FastAPI's per-request dependency machinery costs about
        a third of the passthrough path's CPU and this route needs none of it."""
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        start = time.perf_counter()
        try:
            return await self._handle(request, start)
        except ProxyError as e:
            return error_response(e.status, e.message, e.code, e.param, e.headers)
        except ModelError as e:
            return error_response(e.status, e.message, e.code, headers=e.headers)
        except PolicyError as e:
            return error_response(400, str(e), "invalid_policy", "x-rein-policy")

    async def _handle(self, request: Request, start: float) -> Response:
        raw = await request.body()  # ops.BodyLimit, in front of every route, already capped its size
        # rein's own time runs from the whole body: the client's upload, like the upstream's answer, is not rein's.
        start = time.perf_counter()
        data, req = await off_loop(len(raw), parse_body, raw)
        pipeline = self.engine.pipeline(self._policy_name(request))
        headers = {"authorization": request.headers["authorization"]} if "authorization" in request.headers else {}
        base = {"x-rein-policy": pipeline.policy.name}
        agent = pipeline.agent  # Instrumented: the relay's `chat` span is the wrapper's
        if pipeline.policy.passthrough and capabilities_of(agent).relay:
            if req.stream:
                return await self._relay_stream(agent, raw, req, headers, base, start)
            with tracing.request_span(pipeline.policy.name):
                t_up = time.perf_counter()
                body, _ = await agent.relay(raw, headers, request=req)
                up_ms = (time.perf_counter() - t_up) * 1000
            return Response(body, media_type="application/json",
                            headers={**base, "x-rein-overhead-ms": _ms(start, up_ms)})
        mreq = model_request(data, req, {**headers, **pack_headers(request, pipeline)})
        if not req.stream:
            mreq.wire = WireBody.of_request(raw, mreq)
        if req.stream:
            return await self._pipeline_stream(pipeline, mreq, base, start)
        with tracing.request_span(pipeline.policy.name):
            state = await pipeline.run(mreq)
        out = {**base, **_state_headers(state), "x-rein-overhead-ms": _ms(start, state.get("upstream_ms", 0.0))}
        return Response(orjson.dumps(completion_json(state["final"], req.model)), media_type="application/json",
                        headers=out)

    def _policy_name(self, request: Request) -> str | None:
        name = request.headers.get("x-rein-policy")
        if name is None:
            return None
        if not self.settings.allow_policy_header:
            raise ProxyError(403, "the x-rein-policy header is not allowed by this server's operator",
                             "policy_header_not_allowed", "x-rein-policy")
        if name not in self.allowed_policies:
            raise ProxyError(400, f"unknown policy {name!r}: choose one of {', '.join(sorted(self.allowed_policies))}",
                             "invalid_policy", "x-rein-policy")
        return name

    async def _relay_stream(self, agent: Any, raw: bytes, req: ChatCompletionRequest,
                            headers: dict[str, str], base: dict[str, str], start: float) -> Response:
        span = tracing.start_request_span(base["x-rein-policy"])
        t_up = time.perf_counter()
        source = agent.relay_stream_batches(raw, headers, request=req, parent=trace.set_span_in_context(span))
        try:
            first = await _first(source)  # errors before the first byte are plain HTTP errors
        except BaseException:
            span.end()
            raise
        up_ms = (time.perf_counter() - t_up) * 1000

        async def body() -> AsyncIterator[bytes]:
            try:
                if first is not None:
                    yield _events(first)
                    async for batch in source:
                        yield _events(batch)
                yield b"data: [DONE]\n\n"
            except ModelError as e:  # the wrapper marked its `chat` span failed
                yield sse_error(e.message, e.code, e.status)
            finally:
                await source.aclose()  # ends the `chat` span with the usage it read
                span.end()

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={**base, **_SSE_HEADERS, "x-rein-overhead-ms": _ms(start, up_ms)})

    async def _pipeline_stream(self, pipeline, mreq: ModelRequest, base: dict[str, str], start: float) -> Response:
        span = tracing.start_request_span(pipeline.policy.name)
        with trace.use_span(span):  # the run's task copies this context: its spans nest under the request
            # In its own task: a client hanging up must cancel the graph run, not orphan it.
            events = Detached(pipeline.events(mreq, notices=True))
        head: list[bytes] = []
        headers = dict(base)
        try:
            with trace.use_span(span):  # the pipeline's stage and model spans nest under the request
                async for kind, payload in events:
                    if kind == "diagnosed":
                        # Time spent before the agent is asked: rein's overhead on time to first token.
                        headers.update(_state_headers(payload))
                        headers["x-rein-held"] = _HELD.get(payload.get("stream_mode") or "pass", "none")
                        headers["x-rein-overhead-ms"] = _ms(start)
                    elif kind == "notice":  # the text is held whole: say so now, not after the refiners
                        head.append(_notice(payload))
                        break
                    elif kind == "chunk":
                        head.append(b"data: " + orjson.dumps(payload) + b"\n\n")
                        break
                    else:
                        head.append(_trailer(payload))
                        break
        except BaseException:
            span.end()
            await events.aclose()
            raise

        async def body() -> AsyncIterator[bytes]:
            try:
                for piece in head:
                    yield piece
                with trace.use_span(span):
                    async for event in events:
                        # Events that are already waiting go out in one write.
                        yield b"".join(_sse_event(*e) for e in [event, *events.ready()])
                yield b"data: [DONE]\n\n"
            except ModelError as e:
                yield sse_error(e.message, e.code, e.status)
            except Exception as e:  # never hang or 500 mid-stream: say so and close
                yield sse_error(f"rein failed mid-stream: {type(e).__name__}", "internal_error", 500)
            finally:
                span.end()
                await events.aclose()

        return StreamingResponse(body(), media_type="text/event-stream", headers={**headers, **_SSE_HEADERS})


# x-rein-held, decided before the draft: none (chunks pass as they come), sentences (each sentence
# once checked: at most one sentence of delay), whole (a refiner may ask rein's model).
_HELD = {"pass": "none", "sentences": "sentences", "whole": "whole"}


def _sse_event(kind: str, payload: Any) -> bytes:
    if kind == "chunk":
        return b"data: " + orjson.dumps(payload) + b"\n\n"
    if kind == "notice":
        return _notice(payload)
    return _trailer(payload) if kind == "state" else b""


def _notice(text: str) -> bytes:
    return b": rein " + text.encode("ascii", "replace") + b"\n\n"


async def _first(source: AsyncIterator[Any]) -> Any:
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return None


def _events(batch: list[bytes]) -> bytes:
    """SSE events that arrived together go out in one write."""
    return b"".join([b"data: " + data + b"\n\n" for data in batch])


def _state_headers(state: dict[str, Any]) -> dict[str, str]:
    out = rule_headers(state.get("hits") or [])  # x-rein-rules, x-rein-would-* (shadow mode)
    if state.get("diagnosis") is not None:
        out["x-rein-diagnosis"] = state["diagnosis"].header()
    if state.get("refinement") is not None:
        out["x-rein-refined"] = state["refinement"].header()
        if state["refinement"].flags:  # reported, left as the agent wrote it (factuality mode: flag)
            out["x-rein-flagged"] = state["refinement"].flag_header()
    elif "plan" in state or state.get("final") is not None:
        out["x-rein-refined"] = "none"
    # Action checks on tool-call drafts, by rule id: held (the agent was re-asked), dropped (still
    # held after the policy's rounds: not sent), flagged (reported only).
    for header, key in (("x-rein-held-calls", "held_calls"), ("x-rein-dropped-calls", "dropped_calls"),
                        ("x-rein-flagged-calls", "flagged_calls")):
        if state.get(key):
            out[header] = ",".join(dict.fromkeys(d.rule_id for d in state[key])).encode("ascii", "replace").decode()
    if state.get("incidents"):  # failures the agent reported: /metrics counts them from here
        out["x-rein-incident"] = header_value(state["incidents"])
    if state.get("notes"):
        # Notes may quote a failure of rein's own model: its address stays in the log, not the header.
        out["x-rein-fail-open"] = redact("; ".join(state["notes"]))[:500].encode("ascii", "replace").decode()
    return out


def _trailer(state: dict[str, Any]) -> bytes:
    """What rein did, once the stream is done, as an SSE comment (clients ignore comments)."""
    summary = {k: v for k, v in _state_headers(state).items()}
    if state.get("stream_report") is not None:  # whether text was held, how long, which sentences changed
        summary.update(state["stream_report"].fields())
    return b": rein " + orjson.dumps(summary) + b"\n\n"


def create_app(settings: Settings | None = None, engine: Engine | None = None, serving: bool = False) -> FastAPI:
    """``serving``: set by ``rein serve`` to hook SIGTERM (drain) and SIGHUP (policy reload)."""
    settings = settings or Settings.from_env()
    engine = engine or Engine.from_settings(settings)
    app = FastAPI(title="rein", version="0.1.0", description="Runtime middleware for tool-using agents")
    app.state.engine = engine
    app.state.settings = settings
    handler = ChatHandler(engine, settings)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        if isinstance(exc, ClientDisconnect):  # the client left while sending its body: nothing failed here
            log.debug("rein: %s %s: the client hung up", request.method, request.url.path)
        else:
            log.error("rein: %s %s failed", request.method, request.url.path, exc_info=exc)  # the client reads no more
        return error_response(500, "internal error", "internal_error")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Unknown paths and wrong methods answer in OpenAI's shape too, not FastAPI's {"detail"}.
        codes = {404: "not_found", 405: "method_not_allowed"}
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404 and any(getattr(r, "path", None) == "/v1" + request.url.path for r in app.routes):
            message += f"; rein's API lives under /v1: {request.method} /v1{request.url.path}"
        return error_response(exc.status_code, message, codes.get(exc.status_code, "http_error"),
                              headers=getattr(exc, "headers", None))

    app.router.routes.insert(0, Route("/v1/chat/completions", handler, methods=["POST"], name="chat_completions"))
    protocols.install(app, engine, settings)  # /v1/responses, /v1/messages: the same pipeline

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        agent = engine.agent
        data = await agent.list_models() if capabilities_of(agent).list_models else [
            {"id": getattr(agent, "name", "rein"), "object": "model", "owned_by": "rein"}]
        return {"object": "list", "data": data}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    readiness = Readiness(engine.agent, settings.ready_check_upstream, settings.ready_probe_ttl_s)

    @app.get("/readyz")
    async def readyz() -> Response:
        reason = await readiness.reason()
        if reason is not None:
            return error_response(503, f"not ready: {reason}", "not_ready")
        return Response(b'{"status":"ready"}', media_type="application/json")

    base_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = base_openapi()
        defs = openapi_schema()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.update(defs.pop("$defs", {}))
        components["ChatCompletionRequest"] = defs
        schema.setdefault("paths", {})["/v1/chat/completions"] = {"post": {
            "summary": "Chat Completions", "operationId": "chat_completions",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/ChatCompletionRequest"}}}},
            "responses": {"200": {"description": "a chat.completion, or with stream=true an SSE stream of "
                                                 "chat.completion.chunk events"}}}}
        return schema

    app.openapi = openapi
    app.include_router(admin.router)  # GET/DELETE /v1/rein/profiles/{user}, operator's key
    # /rein/: the decision log's pages, operator's key; its queue is written out at shutdown.
    decisions_ui.install(app, engine.decisions.store if engine.decisions else None, settings.admin_key)
    if engine.decisions is not None:
        app.router.add_event_handler("shutdown", engine.decisions.close)
    ops.install(app, settings, engine, serving=serving)  # keys, rate limit, body limit, drain, /metrics
    loop_probe.install(app)  # only with REIN_LOOP_PROBE=FILE: what held the loop (bench/load.py --stalls)
    if serving:
        # The start-up heap frozen, full collections only between requests (gc_schedule.py): their
        # passes over a busy server's heap were the longest stalls under load (bench/load.py --stalls).
        drain = app.state.drain
        gc_schedule.install(app, lambda: drain.in_flight)
    return app
