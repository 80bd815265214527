"""The proxy app, assembled: the three wire-format routes (routes/), the small endpoints, the
operator's pages, and the guards around them (ops/), outermost first::

    Metrics ─▶ Drain ─▶ Deadline ─▶ BodyLimit ─▶ ApiKeys ─▶ RateLimit ─▶ route

A request's path through a route is told in routes/route.py.
"""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette import routing

from middleware.config import Settings
from middleware.decisions import ui as decisions_ui
from middleware.engine import Engine
from middleware.proxy.errors import error_response
from middleware.proxy.ops import admin, eager_tasks, gc_schedule, loop_probe
from middleware.proxy.ops.deadline import Deadline
from middleware.proxy.ops.drain import Drain, DrainState
from middleware.proxy.ops.guards import ApiKeys, BodyLimit, RateLimit
from middleware.proxy.ops.metrics import Metrics, instruments
from middleware.proxy.ops.ready import Readiness
from middleware.proxy.ops.reload import PolicyReloader
from middleware.proxy.routes.chat import ChatRoute
from middleware.proxy.routes.messages import MessagesRoute, count_tokens
from middleware.proxy.routes.responses import ResponsesRoute
from middleware.proxy.routes.validate import openapi_schema
from policies.chat_model import capabilities_of

log = logging.getLogger("rein.proxy")


def create_app(settings: Settings | None = None, engine: Engine | None = None, serving: bool = False) -> FastAPI:
    """``serving``: set by ``rein serve`` to hook SIGTERM (drain) and SIGHUP (policy reload)."""
    settings = settings or Settings.from_env()
    engine = engine or Engine.from_settings(settings)
    app = FastAPI(title="rein", version="0.1.0", description="Runtime middleware for tool-using agents")
    app.state.engine = engine
    app.state.settings = settings

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

    mount(app, engine, settings)

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
        instruments().watch(engine.decisions)  # its lost writes on /metrics
    guard(app, settings, engine, serving=serving)  # keys, rate limit, body limit, deadline, drain, /metrics
    loop_probe.install(app)  # only with REIN_LOOP_PROBE=FILE: what held the loop (bench/load.py --stalls)
    if serving:
        # The start-up heap frozen, full collections only between requests (gc_schedule.py): their
        # passes over a busy server's heap were the longest stalls under load (bench/load.py --stalls).
        drain = app.state.drain
        gc_schedule.install(app, lambda: drain.in_flight)
        eager_tasks.install(app)  # 3.12+: a graph's node tasks start at once, not one loop pass later
    return app


def mount(app: FastAPI, engine: Engine, settings: Settings) -> None:
    """The three wire formats over the same pipeline, first in the route table. Plain ASGI routes:
    none of FastAPI's per-request machinery."""
    responses = ResponsesRoute(engine, settings)
    app.state.responses = responses
    app.router.routes[0:0] = [
        routing.Route("/v1/chat/completions", ChatRoute(engine, settings), methods=["POST"], name="chat_completions"),
        routing.Route("/v1/responses", responses, methods=["POST"], name="responses"),
        routing.Route("/v1/responses/{response_id}", responses.stored, methods=["GET", "DELETE"],
                      name="stored_response"),
        routing.Route("/v1/messages", MessagesRoute(engine, settings), methods=["POST"], name="messages"),
        routing.Route("/v1/messages/count_tokens", count_tokens, methods=["POST"], name="count_tokens"),
    ]


def guard(app: FastAPI, settings: Settings, engine: Engine, serving: bool = False) -> DrainState:
    """Wrap the app with the guards ``settings`` asks for (the last added is the outermost); returns
    the drain state. ``serving`` (set by ``rein serve``) hooks SIGTERM for draining and SIGHUP / the
    file's mtime for policy reloads, which only ever read the operator's configured path."""
    state = DrainState()
    reloader = PolicyReloader(engine, settings.policy, settings.policy_watch_s)
    app.state.drain = state
    app.state.reloader = reloader
    if settings.rate_limit_rpm:
        app.add_middleware(RateLimit, per_minute=settings.rate_limit_rpm, burst=settings.rate_limit_burst)
    if settings.api_keys:
        app.add_middleware(ApiKeys, keys=list(settings.api_keys))
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(Deadline, seconds=settings.request_deadline_s, state=state)
    app.add_middleware(Drain, state=state, timeout_s=settings.drain_timeout_s, hook_signals=serving,
                       on_startup=reloader.start if serving else None, limit=settings.limit_concurrency)
    if settings.metrics:
        app.add_middleware(Metrics)
    return state
