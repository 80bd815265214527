"""Guards around the proxy, each a pure ASGI middleware with one job: ``BodyLimit``, ``ApiKeys``
(inbound keys, constant-time), ``RateLimit`` (per key). The others are in this folder: metrics.py
(counts everything, serves ``/metrics``), drain.py (503 for new requests once shutdown begins),
deadline.py (every request ends by its deadline, readably). app.py stacks them from ``Settings``;
probes (``/healthz``, ``/readyz``) and ``/metrics`` skip keys and limits so an orchestrator can
always reach them.

Example::

    app = create_app(Settings(api_keys=["team-a:sk-a1", "team-b:sk-b1"], rate_limit_rpm=600))
    # curl -H 'authorization: Bearer sk-a1' .../v1/chat/completions   (acts as tenant team-a)
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import orjson

from middleware.proxy.errors import error_body, messages_error_body
from refiners.store import TENANT

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def send_error(send: Send, status: int, message: str, code: str,
                     headers: dict[str, str] | None = None, scope: Scope | None = None) -> None:
    """An error in the shape of the route asked: Anthropic's on ``/v1/messages``, OpenAI's elsewhere."""
    if scope is not None and scope.get("path", "").startswith("/v1/messages"):
        body = orjson.dumps(messages_error_body(status, message))
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
