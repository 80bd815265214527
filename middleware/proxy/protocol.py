"""One route per wire format over the same pipeline the chat-completions route runs.

A protocol maps its request onto rein's typed messages (a ``Turn``), the pipeline runs exactly
as for ``/v1/chat/completions`` (diagnosis, inception, refinement, the streaming rules), and
the protocol maps the final reply, or the chat chunks of a stream, back to its own shape.
Subclasses say only what differs: parse, render, the stream encoder, the error shape.

Under ``passthrough``, when the operator says the upstream speaks this same protocol
(``upstream_protocol``), the request's bytes go up and the upstream's bytes come back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

import aiohttp
import orjson
from opentelemetry import trace
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pydantic import ValidationError

from middleware import tracing
from middleware.models.openai_compat import OpenAICompatModel
from middleware.proxy.app import ChatHandler, _ms, _state_headers, _trailer, pack_headers
from middleware.proxy.errors import ProxyError
from middleware.proxy.limits import off_loop
from middleware.proxy.ops_stream import Detached
from middleware.proxy.validate import load_body
from middleware.redact import redact_json
from policies.loader import PolicyError
from policies.chat_model import ModelError, ModelRequest, ModelResponse, capabilities_of

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
log = logging.getLogger("rein.proxy")


@dataclass
class Turn:
    """A request in rein's terms plus what the protocol needs to answer it."""

    request: ModelRequest
    stream: bool = False
    echo: dict[str, Any] = field(default_factory=dict)      # request fields the reply repeats
    context: list[dict[str, Any]] = field(default_factory=list)  # the protocol's own input items
    store: bool = False
    tenant: str = ""


class Encoder(Protocol):
    """Chat chunks in, this protocol's SSE events out."""

    def chunk(self, c: dict[str, Any]) -> bytes: ...

    def finish(self, state: dict[str, Any]) -> bytes: ...

    def error(self, message: str, code: str, status: int) -> bytes: ...

    def body(self) -> dict[str, Any]: ...


def tenant_of(request: Request) -> str:
    """The inbound key's id (set by ops.ApiKeys); '' when the server checks no keys."""
    return (request.scope.get("state") or {}).get("rein_key") or ""


class ProtocolRoute(ChatHandler):
    protocol = ""          # the value of Settings.upstream_protocol that lets bytes relay
    upstream_path = ""     # where this protocol lives under the upstream's /v1 base URL

    # ---- what each protocol says ---------------------------------------------------------
    async def parse(self, data: dict[str, Any], request: Request) -> Turn:
        raise NotImplementedError

    def render(self, turn: Turn, final: ModelResponse, owned: set[str]) -> dict[str, Any]:
        raise NotImplementedError

    def encoder(self, turn: Turn, owned: set[str]) -> Encoder:
        raise NotImplementedError

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        raise NotImplementedError

    def relay_headers(self, request: Request, agent: OpenAICompatModel) -> dict[str, str]:
        return agent.headers({"authorization": request.headers.get("authorization", "")})

    async def kept(self, turn: Turn, body: dict[str, Any]) -> None:
        """Called with the whole reply once it is out (the Responses route stores it)."""

    # ---- the shared handling -------------------------------------------------------------
    async def respond(self, request: Request) -> Response:
        start = time.perf_counter()
        try:
            return await self._serve(request, start)
        except ProxyError as e:
            return self.error(e.status, e.message, e.code, e.param, e.headers)
        except ModelError as e:
            return self.error(e.status, e.message, e.code, headers=e.headers)
        except PolicyError as e:
            return self.error(400, str(e), "invalid_policy", "x-rein-policy")
        except Exception:  # never a stack trace: say what failed, in this protocol's shape; the log has the rest
            log.exception("rein: %s request failed", self.protocol)
            return self.error(500, "internal error", "internal_error")

    async def _serve(self, request: Request, start: float) -> Response:
        raw = await request.body()
        # rein's own time runs from the whole body: the client's upload, like the upstream's answer, is not rein's.
        start = time.perf_counter()
        data = await off_loop(len(raw), load_body, raw, self.protocol)
        request.state.rein_body_bytes = len(raw)  # parse() maps a large body off the loop too
        pipeline = self.engine.pipeline(self._policy_name(request))
        base = {"x-rein-policy": pipeline.policy.name}
        agent = self.engine.agent
        if (pipeline.policy.passthrough and capabilities_of(agent).relay
                and self.settings.upstream_protocol == self.protocol):
            return await self._relay(agent, raw, bool(data.get("stream")), request, base, start)
        try:
            turn = await self.parse(data, request)
        except (ValidationError, TypeError, ValueError, AttributeError, KeyError) as e:
            # A shape the mapping did not foresee is still the body's fault: a 400, and the log says where.
            log.warning("rein: a %s body the mapping did not foresee: %r", self.protocol, e)
            raise ProxyError(400, f"the request body does not fit the {self.protocol} format rein reads",
                             "invalid_request") from None
        turn.request.headers.update(pack_headers(request, pipeline))
        owned = pipeline.inception.owned_tools(turn.request.tools)
        if turn.stream:
            return await self._stream(pipeline, turn, owned, base, start)
        with tracing.request_span(pipeline.policy.name, self.protocol):
            state = await pipeline.run(turn.request)
        body = self.render(turn, state["final"], owned)
        await self.kept(turn, body)
        headers = {**base, **_state_headers(state), "x-rein-overhead-ms": _ms(start, state.get("upstream_ms", 0.0))}
        return Response(orjson.dumps(body), media_type="application/json", headers=headers)

    async def _stream(self, pipeline, turn: Turn, owned: set[str], base: dict[str, str], start: float) -> Response:
        span = tracing.start_request_span(pipeline.policy.name, self.protocol)
        with trace.use_span(span):
            events = Detached(pipeline.events(turn.request))  # a hang-up cancels the run (see app.py)
        encoder = self.encoder(turn, owned)
        headers = dict(base)
        head: list[bytes] = []
        try:
            with trace.use_span(span):
                async for kind, payload in events:
                    if kind == "diagnosed":  # before the agent is asked: rein's time to first token
                        headers.update(_state_headers(payload))
                        headers["x-rein-overhead-ms"] = _ms(start)
                        continue
                    head.append(encoder.chunk(payload) if kind == "chunk" else self._end(encoder, payload))
                    break
        except BaseException:
            span.end()
            await events.aclose()
            raise

        async def body() -> AsyncIterator[bytes]:
            done = False
            try:
                for piece in head:
                    yield piece
                with trace.use_span(span):
                    async for kind, payload in events:
                        yield encoder.chunk(payload) if kind == "chunk" else self._end(encoder, payload)
                done = True
            except ModelError as e:
                yield encoder.error(e.message, e.code, e.status)
            except Exception as e:  # never hang or 500 mid-stream: say so and close
                yield encoder.error(f"rein failed mid-stream: {type(e).__name__}", "internal_error", 500)
            finally:
                span.end()
                await events.aclose()
            if done:
                await self.kept(turn, encoder.body())

        return StreamingResponse(body(), media_type="text/event-stream", headers={**headers, **SSE_HEADERS})

    @staticmethod
    def _end(encoder: Encoder, state: dict[str, Any]) -> bytes:
        return encoder.finish(state) + _trailer(state)

    async def _relay(self, agent: OpenAICompatModel, raw: bytes, stream: bool, request: Request,
                     base: dict[str, str], start: float) -> Response:
        """Bytes both ways: the upstream speaks this protocol and no stage runs (passthrough)."""
        url = agent.base_url + self.upstream_path
        headers = self.relay_headers(request, agent)
        session = agent.pool.session()
        t_up = time.perf_counter()
        try:
            resp = await session.post(url, data=raw, headers=headers, timeout=agent._timeout(None, stream=stream))
            if not stream or resp.status >= 400:
                async with resp:
                    content = await resp.read()
                out = {**base, "x-rein-overhead-ms": _ms(start, (time.perf_counter() - t_up) * 1000)}
                if resp.status >= 400:  # the upstream's own error body may name its hosts: redacted like rein's
                    content = redact_json(content)
                return Response(content, status_code=resp.status, headers=out,
                                media_type=resp.headers.get("content-type", "application/json"))
        except asyncio.TimeoutError:
            raise ProxyError(504, "upstream timed out", "upstream_timeout") from None
        except aiohttp.ClientError as e:
            log.warning("rein: upstream %s unreachable: %s", url, e)
            raise ProxyError(502, "upstream unreachable", "upstream_unreachable") from None
        encoder = self.encoder(Turn(ModelRequest(messages=[])), set())
        up_ms = (time.perf_counter() - t_up) * 1000

        async def body() -> AsyncIterator[bytes]:
            try:
                async for piece in resp.content.iter_any():
                    yield piece
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                log.warning("rein: upstream stream from %s broke: %r", url, e)
                yield encoder.error("the upstream's stream broke off", "upstream_stream_broken", 502)
            finally:
                resp.release()

        return StreamingResponse(body(), media_type=resp.headers.get("content-type", "text/event-stream"),
                                 headers={**base, **SSE_HEADERS, "x-rein-overhead-ms": _ms(start, up_ms)})
