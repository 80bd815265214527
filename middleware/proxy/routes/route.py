"""One route type for the three wire formats rein answers: chat.py (OpenAI Chat Completions),
responses.py (OpenAI Responses) and messages.py (Anthropic Messages) are its instances.

A request goes ``read`` → ``parse`` → the pipeline → ``render``, or, streamed, through one loop
(``_stream``) whose ``Encoder`` turns the pipeline's chat chunks into the protocol's events:

- ``read``: the body as JSON, held to the limits (limits.py; chat's is also validated, validate.py);
- under ``passthrough``, when the agent relays bytes (``capabilities.relay``) and the upstream
  speaks this protocol (``Settings.upstream_protocol``; chat always), ``relay`` (relay.py) sends the
  bytes up and the upstream's back, in the agent's ``chat`` span;
- ``parse``: the protocol's request as rein's typed request (a ``Turn``);
- the pipeline is the same for every protocol (``Pipeline.run``, ``Pipeline.events``);
- ``render``: the final reply in the protocol's shape (rein-owned tool calls are already gone:
  the pipeline drops them from every reply and stream).

Every route sends the same ``x-rein-*`` headers (headers.py), the same ``: rein`` notices and
trailer on a stream, and maps every error the same way (``respond``) into its own shape (``error``).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Protocol

import orjson
from opentelemetry import trace
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from middleware import tracing
from middleware.proxy.errors import ProxyError
from middleware.proxy.headers import SSE_HEADERS, diagnosed_headers, notice, overhead_ms, pack_headers, \
    state_headers, trailer
from middleware.proxy.routes.detached import Detached
from middleware.proxy.routes.limits import off_loop
from middleware.proxy.routes.validate import load_body
from policies.chat_model import ModelError, ModelRequest, ModelResponse, capabilities_of
from policies.loader import PolicyError, shipped

log = logging.getLogger("rein.proxy")


@dataclass
class Body:
    """A request body as read: the JSON object, whether it asks to stream, and (chat) its validated form."""

    data: dict[str, Any]
    stream: bool
    parsed: Any = None


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

    closing: bytes  # sent after the trailer of a stream that ended well (chat's ``data: [DONE]``)

    def chunk(self, c: dict[str, Any]) -> bytes: ...

    def finish(self, state: dict[str, Any]) -> bytes: ...

    def error(self, message: str, code: str, status: int) -> bytes: ...

    def body(self) -> dict[str, Any]: ...


def tenant_of(request: Request) -> str:
    """The inbound key's id (set by ops/guards.ApiKeys); '' when the server checks no keys."""
    return (request.scope.get("state") or {}).get("rein_key") or ""


def policy_name(request: Request, allow_header: bool, allowed: set[str]) -> str | None:
    """The policy an ``x-rein-policy`` header asks for, when the operator allows the header."""
    name = request.headers.get("x-rein-policy")
    if name is None:
        return None
    if not allow_header:
        raise ProxyError(403, "the x-rein-policy header is not allowed by this server's operator",
                         "policy_header_not_allowed", "x-rein-policy")
    if name not in allowed:
        raise ProxyError(400, f"unknown policy {name!r}: choose one of {', '.join(sorted(allowed))}",
                         "invalid_policy", "x-rein-policy")
    return name


class Route:
    protocol = ""          # the value of Settings.upstream_protocol that lets bytes relay
    upstream_path = ""     # where this protocol lives under the upstream's /v1 base URL

    def __init__(self, engine: Any, settings: Any):
        self.engine = engine
        self.settings = settings
        # Clients pick among shipped packs and the operator's own; never an arbitrary server path.
        self.allowed_policies = set(shipped()) | {settings.policy}
        # The upstream speaks chat completions, and the protocol the operator says besides.
        self.upstream_speaks = self.protocol in ("chat", settings.upstream_protocol)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Mounted as a plain ASGI route: FastAPI's per-request dependency machinery costs about
        a third of the passthrough path's CPU and no route needs any of it."""
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    # ---- what each protocol says ---------------------------------------------------------
    async def read(self, raw: bytes) -> Body:
        data = await off_loop(len(raw), load_body, raw, self.protocol)
        return Body(data, bool(data.get("stream")))

    async def parse(self, body: Body, raw: bytes, request: Request) -> Turn:
        raise NotImplementedError

    def render(self, turn: Turn, final: ModelResponse) -> dict[str, Any]:
        raise NotImplementedError

    def encoder(self, turn: Turn) -> Encoder:
        raise NotImplementedError

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        raise NotImplementedError

    async def relay(self, agent: Any, raw: bytes, body: Body, request: Request, base: dict[str, str],
                    start: float) -> Response:
        raise NotImplementedError

    async def kept(self, turn: Turn, body: dict[str, Any]) -> None:
        """Called with the whole reply once it is out (the Responses route stores it)."""

    # ---- the same for every protocol -------------------------------------------------------
    async def respond(self, request: Request) -> Response:
        try:
            return await self._serve(request)
        except ProxyError as e:
            return self.error(e.status, e.message, e.code, e.param, e.headers)
        except ModelError as e:
            return self.error(e.status, e.message, e.code, headers=e.headers)
        except PolicyError as e:
            return self.error(400, str(e), "invalid_policy", "x-rein-policy")
        except ClientDisconnect:
            raise  # the client left while sending its body: nothing failed here (app.py logs it)
        except Exception:  # never a stack trace: say what failed, in this protocol's shape; the log has the rest
            log.exception("rein: %s request failed", self.protocol)
            return self.error(500, "internal error", "internal_error")

    async def _serve(self, request: Request) -> Response:
        raw = await request.body()  # ops/guards.BodyLimit, in front of every route, already capped its size
        # rein's own time runs from the whole body: the client's upload, like the upstream's answer, is not rein's.
        start = time.perf_counter()
        body = await self.read(raw)
        pipeline = self.engine.pipeline(policy_name(request, self.settings.allow_policy_header, self.allowed_policies))
        base = {"x-rein-policy": pipeline.policy.name}
        agent = pipeline.agent  # Instrumented: a relay's `chat` span is the wrapper's
        if pipeline.policy.passthrough and self.upstream_speaks and capabilities_of(agent).relay:
            return await self.relay(agent, raw, body, request, base, start)
        try:
            turn = await self.parse(body, raw, request)
        except (ValidationError, TypeError, ValueError, AttributeError, KeyError) as e:
            # A shape the mapping did not foresee is still the body's fault: a 400, and the log says where.
            log.warning("rein: a %s body the mapping did not foresee: %r", self.protocol, e)
            raise ProxyError(400, f"the request body does not fit the {self.protocol} format rein reads",
                             "invalid_request") from None
        turn.request.headers.update(pack_headers(request, pipeline))
        if turn.stream:
            return await self._stream(pipeline, turn, base, start)
        with tracing.request_span(pipeline.policy.name, self.protocol):
            state = await pipeline.run(turn.request)
        reply = self.render(turn, state["final"])
        await self.kept(turn, reply)
        headers = {**base, **state_headers(state), "x-rein-overhead-ms": overhead_ms(start, state.get("upstream_ms", 0.0))}
        return Response(orjson.dumps(reply), media_type="application/json", headers=headers)

    async def _stream(self, pipeline: Any, turn: Turn, base: dict[str, str], start: float) -> Response:
        span = tracing.start_request_span(pipeline.policy.name, self.protocol)
        with trace.use_span(span):  # the run's task copies this context: its spans nest under the request
            # In its own task: a client hanging up must cancel the run, not orphan it (detached.py).
            events = Detached(pipeline.events(turn.request, notices=True))
        encoder = self.encoder(turn)
        headers = dict(base)
        head: list[bytes] = []
        try:
            with trace.use_span(span):  # the pipeline's stage and model spans nest under the request
                async for kind, payload in events:
                    if kind == "diagnosed":  # before the agent is asked: rein's overhead on time to first token
                        headers.update(diagnosed_headers(payload))
                        headers["x-rein-overhead-ms"] = overhead_ms(start)
                        continue
                    head.append(_event(encoder, kind, payload))  # the first event: the headers are known
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
                    async for event in events:
                        # Events that are already waiting go out in one write.
                        yield b"".join(_event(encoder, *e) for e in [event, *events.ready()])
                if encoder.closing:
                    yield encoder.closing
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


def _event(encoder: Encoder, kind: str, payload: Any) -> bytes:
    """One pipeline event as bytes: a chunk in the protocol's events, a notice, or the end with rein's trailer."""
    if kind == "chunk":
        return encoder.chunk(payload)
    if kind == "notice":  # the text is held whole: say so now, not after the refiners
        return notice(payload)
    return encoder.finish(payload) + trailer(payload) if kind == "state" else b""
