"""The fast path: raw HTTP to an OpenAI-compatible ``/v1`` base URL over a shared aiohttp pool.

No litellm here: the proxy's hot path must not pay its per-call CPU. Bodies are built and
parsed with orjson; ``relay``/``relay_stream`` pass the upstream's bytes through untouched.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, NamedTuple

import aiohttp
import orjson

from middleware.models.forward import Forwarded, forward
from middleware.redact import redact
from policies.messages import AssistantMessage, dump_messages
from policies.chat_model import PASSED_THROUGH_STATUS, Capabilities, ModelError, ModelRequest, ModelResponse

# Where the upstream lives is the operator's business: clients get what failed, the log gets where.
log = logging.getLogger("rein.upstream")


class Pool:
    """One aiohttp session per event loop (tests and workers each run their own loop)."""

    def __init__(self, limit: int = 1000):
        self.limit = limit
        self._sessions: dict[int, aiohttp.ClientSession] = {}

    def session(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        s = self._sessions.get(id(loop))
        if s is None or s.closed:
            connector = aiohttp.TCPConnector(limit=self.limit, ttl_dns_cache=300, enable_cleanup_closed=True)
            s = aiohttp.ClientSession(connector=connector, json_serialize=lambda o: orjson.dumps(o).decode(),
                                      auto_decompress=True)
            self._sessions[id(loop)] = s
        return s

    async def close(self) -> None:
        for s in list(self._sessions.values()):
            await s.close()
        self._sessions.clear()


class WireBody(NamedTuple):
    """A client's non-streaming Chat Completions body and the values the proxy read it into."""

    raw: bytes
    of: tuple[Any, ...]   # messages, tools, tool_choice, response_format, extra, model: the very objects
    messages: int         # how many messages there were (a list appended to in place is not the body)

    @classmethod
    def of_request(cls, raw: bytes, request: ModelRequest) -> "WireBody":
        return cls(raw, _fields(request), len(request.messages))

    def unchanged(self, request: ModelRequest) -> bool:
        """Whether ``request`` still says exactly what the body says: no stage replaced or grew a part of it."""
        return (len(request.messages) == self.messages and "stream_options" not in request.extra
                and request.model is not None and all(a is b for a, b in zip(_fields(request), self.of)))


def _fields(request: ModelRequest) -> tuple[Any, ...]:
    return (request.messages, request.tools, request.tool_choice, request.response_format, request.extra,
            request.model)


def body_of(request: ModelRequest, model: str | None) -> dict[str, Any]:
    body: dict[str, Any] = dict(request.extra)
    body["messages"] = dump_messages(request.messages)
    body["model"] = request.model or model or body.get("model") or "default"
    for key in ("tools", "tool_choice", "response_format"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    return body


def dumps(body: dict[str, Any]) -> bytes:
    """The upstream request's bytes. orjson stops at 255 levels; the proxy refuses deeper JSON
    at parse time, so only an SDK caller's body gets here, and gets a 400 rather than a crash."""
    try:
        return orjson.dumps(body)
    except TypeError as e:  # orjson.JSONEncodeError: nested too deep, or not JSON at all
        raise ModelError(f"the request cannot be sent upstream as JSON: {e}", 400, "invalid_json") from None


def upstream_error(status: int, raw: bytes, headers: Any = None) -> ModelError:
    """Map an upstream HTTP failure to the proxy's answer: client errors pass, the rest is 502."""
    try:
        err = orjson.loads(raw).get("error") or {}
        message = err.get("message") if isinstance(err, dict) else str(err)
    except Exception:
        message = None
    message = redact(str(message or raw[:200].decode("utf-8", "replace") or f"HTTP {status}"))
    keep = {}
    if headers is not None and headers.get("Retry-After"):
        keep["retry-after"] = headers.get("Retry-After")
    if status in PASSED_THROUGH_STATUS:
        return ModelError(f"upstream: {message}", status, "upstream_" + str(status), keep)
    return ModelError(f"upstream returned HTTP {status}: {message}", 502, "upstream_error", keep)


def parse_completion(data: dict[str, Any]) -> ModelResponse:
    """A completion ``relay`` already parsed and checked for ``choices``, as a typed response."""
    try:
        choice = data["choices"][0]
        message = AssistantMessage.model_validate({**choice["message"], "role": "assistant"})
    except Exception as e:
        raise ModelError(f"upstream returned an invalid completion: {e!s:.200}", 502, "bad_upstream_response") from None
    return ModelResponse(message=message, model=data.get("model", ""), finish_reason=choice.get("finish_reason"),
                         usage=data.get("usage"), raw=data)


async def sse_batches(resp: aiohttp.ClientResponse) -> AsyncIterator[list[bytes]]:
    """The ``data:`` payloads of an SSE body, ``[DONE]`` excluded, one list per network read:
    a relay writes what arrived together in one go (fewer writes, no added wait).

    A stream that ends without ``[DONE]`` is broken (the upstream died or a proxy cut it),
    and a 200 that is not an event stream at all is a bad answer: both raise, so the
    client sees an error event instead of a reply that silently stops.
    """
    buffer = b""
    head = b""
    seen = False
    async for piece in resp.content.iter_any():
        if len(head) < 200:
            head += piece[:200]
        buffer += piece
        if b"\n" not in piece:
            continue
        lines = buffer.split(b"\n")
        buffer = lines.pop()
        batch = []
        for line in lines:
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                if batch:
                    yield batch
                return
            batch.append(data)
        if batch:
            seen = True
            yield batch
    tail = buffer.strip()
    if tail.startswith(b"data:"):
        if tail[5:].strip() == b"[DONE]":
            return
        seen = True
        yield [tail[5:].strip()]
    if not seen:
        raise ModelError(f"upstream did not answer with an event stream: {head[:200].decode('utf-8', 'replace')!r}",
                         502, "bad_upstream_response")
    raise ModelError("upstream stream ended before [DONE]", 502, "upstream_stream_broken")


class OpenAICompatModel:
    """A chat model behind an OpenAI-compatible base URL (``http://host:port/v1``)."""

    provider = "openai"
    capabilities = Capabilities(relay=True, list_models=True)

    def __init__(self, base_url: str, api_key: str | None = None, model: str | None = None,
                 timeout: float = 60.0, pool: Pool | None = None, idle_timeout: float | None = None):
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.api_key = api_key
        self.model = model
        self.name = model or "upstream"  # a model id clients may see (/v1/models, spans): never the URL
        self.timeout = timeout
        self.idle_timeout = idle_timeout  # longest silence inside a stream; None: ``timeout``
        self.pool = pool or Pool()

    def headers(self, request_headers: dict[str, str] | None = None) -> dict[str, str]:
        h = {"content-type": "application/json"}
        if self.api_key:
            h["authorization"] = f"Bearer {self.api_key}"
        elif request_headers and request_headers.get("authorization"):
            # The caller's credentials go to the upstream only when rein has none of its own.
            h["authorization"] = request_headers["authorization"]
        return h

    def _timeout(self, seconds: float | None, stream: bool = False) -> aiohttp.ClientTimeout:
        seconds = seconds or self.timeout
        if stream:  # a long generation is fine as long as bytes keep coming (the proxy's deadline caps it)
            return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=self.idle_timeout or seconds)
        return aiohttp.ClientTimeout(total=seconds)

    async def relay(self, body: bytes, headers: dict[str, str] | None = None,
                    timeout: float | None = None) -> tuple[bytes, dict[str, Any]]:
        """POST raw bytes; return the raw completion bytes and their parsed form (validated)."""
        try:
            async with self.pool.session().post(self.url, data=body, headers=self.headers(headers),
                                                timeout=self._timeout(timeout)) as resp:
                raw = await resp.read()
                if resp.status >= 400:
                    raise upstream_error(resp.status, raw, resp.headers)
        except asyncio.TimeoutError:
            raise ModelError("upstream timed out", 504, "upstream_timeout") from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
                raise ValueError("no choices")
        except Exception as e:
            raise ModelError(f"upstream returned an invalid completion: {e!s:.200}", 502, "bad_upstream_response") from None
        return raw, data

    async def relay_stream_batches(self, body: bytes, headers: dict[str, str] | None = None,
                                   timeout: float | None = None) -> AsyncIterator[list[bytes]]:
        """POST raw bytes with stream=true; yield the SSE ``data:`` payloads that arrived together."""
        try:
            async with self.pool.session().post(self.url, data=body, headers=self.headers(headers),
                                                timeout=self._timeout(timeout, stream=True)) as resp:
                if resp.status >= 400:
                    raise upstream_error(resp.status, await resp.read(), resp.headers)
                async for batch in sse_batches(resp):
                    yield batch
        except asyncio.TimeoutError:
            raise ModelError("upstream timed out (no bytes within the stream's idle timeout)", 504,
                             "upstream_timeout") from None
        except aiohttp.ClientPayloadError as e:
            log.warning("upstream %s: stream broke: %s", self.base_url, e)
            raise ModelError("upstream stream broke", 502, "upstream_stream_broken") from None
        except aiohttp.ClientError as e:
            raise self._unreachable(e) from None

    def _unreachable(self, e: Exception) -> ModelError:
        log.warning("upstream %s unreachable: %s: %s", self.base_url, type(e).__name__, e)
        return ModelError("upstream unreachable", 502, "upstream_unreachable")

    async def relay_stream(self, body: bytes, headers: dict[str, str] | None = None,
                           timeout: float | None = None) -> AsyncIterator[bytes]:
        """POST raw bytes with stream=true; yield each SSE ``data:`` payload as bytes."""
        batches = self.relay_stream_batches(body, headers, timeout)
        try:
            async for batch in batches:
                for data in batch:
                    yield data
        finally:
            await batches.aclose()

    async def complete(self, request: ModelRequest) -> ModelResponse:
        if isinstance(request.wire, WireBody) and request.wire.unchanged(request):
            # No stage changed the request (most turns): the client's bytes go up as they came.
            _, data = await self.relay(request.wire.raw, request.headers, request.timeout)
            return parse_completion(data)
        body = body_of(request, self.model)
        body.pop("stream", None)
        body.pop("stream_options", None)
        _, data = await self.relay(dumps(body), request.headers, request.timeout)
        return parse_completion(data)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        body = body_of(request, self.model)
        body["stream"] = True
        async for data in self.relay_stream(dumps(body), request.headers, request.timeout):
            try:
                chunk = orjson.loads(data)
            except orjson.JSONDecodeError:
                raise ModelError("upstream sent an invalid stream chunk", 502, "bad_upstream_response") from None
            if isinstance(chunk, dict) and chunk.get("error"):
                raise upstream_error(502, data)
            yield chunk

    async def forward(self, path: str, body: bytes, headers: dict[str, str], stream: bool = False) -> Forwarded:
        """POST raw bytes to another endpoint (``/responses``, ``/messages``): the answer as it came (forward.py)."""
        return await forward(self, path, body, headers, stream)

    async def list_models(self) -> list[dict[str, Any]]:
        try:
            async with self.pool.session().get(self.base_url + "/models", headers=self.headers(),
                                               timeout=self._timeout(5)) as resp:
                if resp.status == 200:
                    return (await resp.json(loads=orjson.loads)).get("data", [])
        except Exception as e:
            log.info("upstream %s: listing models failed: %s", self.base_url, e)
        return [{"id": self.name, "object": "model", "owned_by": "upstream"}]

    async def probe(self) -> str | None:
        """Why the upstream is not ready, or None when it answers. Any HTTP answer below 500 counts
        (a /models that wants a key still proves the server is up); the reason names no address."""
        try:
            async with self.pool.session().get(self.base_url + "/models", headers=self.headers(),
                                               timeout=aiohttp.ClientTimeout(total=min(self.timeout, 3.0))) as resp:
                return f"upstream answered HTTP {resp.status}" if resp.status >= 500 else None
        except asyncio.TimeoutError:
            return "upstream did not answer within 3 s"
        except aiohttp.ClientError as e:
            log.warning("readiness: upstream %s unreachable: %s: %s", self.base_url, type(e).__name__, e)
            return "upstream unreachable"
