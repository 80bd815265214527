"""Production guards around the proxy, each a pure ASGI middleware with one job.

Outermost first: ``Metrics`` (counts everything, serves ``/metrics``), ``Drain`` (503 for new
requests once shutdown begins, while in-flight requests and streams finish), ``Deadline``
(ops_deadline.py: every request ends by its deadline or drain's grace cut, readably), ``BodyLimit``,
``ApiKeys`` (inbound keys, constant-time), ``RateLimit`` (per key). ``install`` wires them from
``Settings``; probes (``/healthz``, ``/readyz``) and ``/metrics`` skip keys and limits so an
orchestrator can always reach them.

Example::

    app = create_app(Settings(api_keys=["team-a:sk-a1", "team-b:sk-b1"], rate_limit_rpm=600))
    # curl -H 'authorization: Bearer sk-a1' .../v1/chat/completions   (acts as tenant team-a)
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import signal
import threading
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

from middleware.proxy.errors import error_body
from middleware.proxy.ops_deadline import Deadline
from middleware.proxy.ops_metrics import Instruments, instruments, render_metrics
from refiners.store import TENANT

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
log = logging.getLogger("rein.ops")


async def send_error(send: Send, status: int, message: str, code: str,
                     headers: dict[str, str] | None = None, scope: Scope | None = None) -> None:
    """An error in the shape of the route asked: Anthropic's on ``/v1/messages``, OpenAI's elsewhere."""
    import orjson

    if scope is not None and scope.get("path", "").startswith("/v1/messages"):
        from middleware.proxy.anthropic_map import error_body as anthropic_body

        body = orjson.dumps(anthropic_body(status, message))
    else:
        body = orjson.dumps(error_body(status, message, code))
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def parse_key(entry: str) -> tuple[str | None, str]:
    """``team-a:sk-123`` → ("team-a", "sk-123"); a bare ``sk-123`` (the older form) has no name."""
    name, sep, key = entry.partition(":")
    if sep and key and _NAME.fullmatch(name):
        return name, key
    return None, entry


class ApiKeys:
    """Inbound API keys. Every configured key is compared (no early exit), on digests of equal
    length, so timing reveals neither which key matched nor how much of one did. The key is
    rein's, not the upstream's: it is removed before the request goes on.

    A key's tenant is the name the operator gave it (``team-a:sk-123``); an unnamed key's is its
    digest prefix. The tenant scopes persona profiles and stored responses: it is set in the
    scope's state (``rein_key``) and in ``refiners.store.TENANT`` for everything the request runs."""

    def __init__(self, app: ASGIApp, keys: list[str]):
        self.app = app
        self.digests: list[tuple[bytes, str]] = []
        for entry in keys:
            name, key = parse_key(entry)
            digest = hashlib.sha256(key.encode()).digest()
            self.digests.append((digest, name or digest.hex()[:12]))

    def check(self, presented: str | None) -> str | None:
        """The matched key's tenant (its name, or a digest prefix; safe for logs), or None."""
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        matched = None
        for known, tenant in self.digests:
            if hmac.compare_digest(digest, known):
                matched = tenant
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The decision pages (/rein/) take the operator's admin key, which a browser sends as basic auth.
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["path"].startswith("/rein/"):
            return await self.app(scope, receive, send)
        bearer = _header(scope, b"authorization") or ""
        presented = bearer[7:].strip() if bearer[:7].lower() == "bearer " else _header(scope, b"x-api-key")
        key_id = self.check(presented)
        if key_id is None:
            if scope["path"].startswith("/v1/messages"):  # Anthropic's clients send x-api-key
                return await send_error(send, 401, "missing or invalid API key: send 'x-api-key: <key>'",
                                        "invalid_api_key", scope=scope)
            return await send_error(send, 401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                                    "invalid_api_key", {"www-authenticate": "Bearer"})
        scope = dict(scope, headers=[(k, v) for k, v in scope["headers"] if k not in (b"authorization", b"x-api-key")])
        scope.setdefault("state", {})["rein_key"] = key_id
        token = TENANT.set(key_id)
        try:
            await self.app(scope, receive, send)
        finally:
            TENANT.reset(token)


class RateLimit:
    """A token bucket per API key (per client address when keys are off), in this process:
    with N workers or replicas the allowance is per worker. Past it: 429 with Retry-After."""

    def __init__(self, app: ASGIApp, per_minute: float, burst: int | None = None, max_keys: int = 10_000):
        self.app = app
        self.rate = per_minute / 60.0
        self.burst = float(burst or max(1, math.ceil(per_minute / 6)))
        self.max_keys = max_keys
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, when)

    def take(self, key: str, now: float | None = None) -> float:
        """0 when allowed, else the seconds until a token is free."""
        now = time.monotonic() if now is None else now
        tokens, when = self.buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - when) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self.buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        if len(self.buckets) > self.max_keys:  # bounded memory: forget the least recently seen
            self.buckets.popitem(last=False)
        return wait

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        key = scope.get("state", {}).get("rein_key") or "ip:" + str((scope.get("client") or ("?",))[0])
        wait = self.take(key)
        if wait > 0:
            return await send_error(send, 429, f"rate limit of {self.rate * 60:g} requests per minute exceeded",
                                    "rate_limit_exceeded", {"retry-after": str(math.ceil(wait))}, scope)
        await self.app(scope, receive, send)


class BodyLimit:
    """413 before the handler runs: at once from Content-Length, or while reading a chunked body,
    so a client cannot make rein buffer more than the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        declared = _header(scope, b"content-length")
        too_big = f"request body is larger than the limit of {self.max_bytes} bytes"
        if declared is not None:
            if declared.isdigit() and int(declared) > self.max_bytes:
                return await send_error(send, 413, too_big, "request_too_large", {"connection": "close"}, scope)
            return await self.app(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                return await send_error(send, 413, too_big, "request_too_large", {"connection": "close"}, scope)
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        replay = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replayed() -> Message:
            return replay.pop() if replay else await receive()

        await self.app(scope, replayed, send)


class DrainState:
    """In-flight request count and the draining flag, shared by the middleware and the signal hook."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.draining = False
        self.cutting = False
        self.running: set[Any] = set()  # each request's asyncio.timeout (ops_deadline.Deadline)

    def cut(self) -> None:
        """End every request still running now: each ends with an error the client can read."""
        self.cutting = True
        now = asyncio.get_running_loop().time()
        for timeout in list(self.running):
            timeout.reschedule(now)

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.in_flight > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.in_flight == 0


class Drain:
    """Graceful shutdown. On SIGTERM (hooked at lifespan start-up, when ``hook_signals``):
    /readyz turns 503 so the load balancer stops routing here, new requests get 503 with
    ``connection: close``, and only once the in-flight ones (streams included) have finished,
    or ``timeout_s`` passed, does the server's own shutdown begin."""

    def __init__(self, app: ASGIApp, state: DrainState, timeout_s: float = 30.0, hook_signals: bool = False,
                 on_startup: Callable[[], None] | None = None, limit: int | None = None):
        self.app = app
        self.state = state
        self.limit = limit
        self.timeout_s = timeout_s
        self.hook_signals = hook_signals
        self.on_startup = on_startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, self._lifespan(receive), send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.state.draining and scope["path"] != "/healthz":
            return await send_error(send, 503, "rein is shutting down; retry on another replica",
                                    "shutting_down", {"connection": "close", "retry-after": "1"}, scope)
        if self.limit is not None and self.state.in_flight >= self.limit and scope["path"] not in OPEN_PATHS:
            return await send_error(send, 503, f"rein is at its limit of {self.limit} concurrent requests",
                                    "overloaded", {"retry-after": "1"}, scope)
        self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1

    def _lifespan(self, receive: Receive) -> Receive:
        async def wrapped() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.hook_signals:
                    self.install(asyncio.get_running_loop())
                if self.on_startup is not None:
                    self.on_startup()
            return message
        return wrapped

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Put the drain in front of the server's SIGTERM handler (uvicorn's, in each worker)."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not callable(previous):  # the server handles no SIGTERM itself: nothing to put a drain before
            return

        def on_term(sig: int, frame: Any) -> None:
            if self.state.draining:  # a second SIGTERM: stop now
                return previous(sig, frame)
            self.state.draining = True
            log.warning("rein: draining %d in-flight request(s) before shutdown", self.state.in_flight)

            async def finish() -> None:
                if not await self.state.wait_idle(self.timeout_s):
                    # The server's own shutdown would cancel them mid-body: end them readably first.
                    log.warning("rein: drain grace period over; ending %d request(s) with an error event",
                                self.state.in_flight)
                    self.state.cut()
                    await self.state.wait_idle(5.0)
                previous(sig, frame)

            loop.call_soon_threadsafe(lambda: loop.create_task(finish()))

        signal.signal(signal.SIGTERM, on_term)


class Metrics:
    """Serves ``GET /metrics`` and records every request from what the response says: status,
    ``x-rein-overhead-ms`` (rein's added latency), ``x-rein-diagnosis`` and ``x-rein-refined``
    (for streams, the closing ``: rein {...}`` comment). No request content is read."""

    def __init__(self, app: ASGIApp, meters: Instruments | None = None):
        self.app = app
        self.meters = meters or instruments()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/metrics" and scope["method"] == "GET":
            body, content_type = render_metrics()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", content_type.encode())]})
            return await send({"type": "http.response.body", "body": body})
        route = _route(scope["path"])
        seen: dict[str, Any] = {"status": 500, "stream_error": False, "left": False, "started": False}

        async def listen() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect":
                seen["left"] = True
            return message

        async def watch(message: Message) -> None:
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


def install(app: Any, settings: Any, engine: Any, serving: bool = False) -> DrainState:
    """Wrap a FastAPI app with the guards ``settings`` asks for; returns the drain state.
    ``serving`` (set by ``rein serve``) hooks SIGTERM for draining and SIGHUP / the file's
    mtime for policy reloads, which only ever read the operator's configured path."""
    from middleware.proxy.ops_reload import PolicyReloader

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
