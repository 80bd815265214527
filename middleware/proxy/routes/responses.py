"""``POST /v1/responses`` (OpenAI Responses) and, with a store, ``GET``/``DELETE /v1/responses/{id}``.

Stateless by default, like the chat route: the client sends the whole input. With
``response_db`` configured, each response is kept (unless the request says ``store: false``)
with the input items that led to it, so ``previous_response_id`` continues that dialogue.
"""
from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from middleware.proxy.errors import ProxyError, error_response
from middleware.proxy.response_store import ResponseStore, open_response_store
import middleware.proxy.routes.responses_map as rmap
from middleware.proxy.routes.limits import off_loop
from middleware.proxy.routes.relay import relay_forward
from middleware.proxy.routes.responses_reply import ResponsesEncoder, render
from middleware.proxy.routes.route import Body, Route, Turn, tenant_of
from policies.chat_model import ModelRequest, ModelResponse

log = logging.getLogger("rein.proxy")


class ResponsesRoute(Route):
    protocol = "responses"
    upstream_path = "/responses"

    def __init__(self, engine, settings, store: ResponseStore | None = None):
        super().__init__(engine, settings)
        self.store = store if store is not None else open_response_store(settings.response_db)

    async def parse(self, body: Body, raw: bytes, request: Request) -> Turn:
        data = body.data
        tenant = tenant_of(request)
        items = rmap.input_items(data)
        prior = await self._prior(data.get("previous_response_id"), tenant)
        headers = {"authorization": request.headers["authorization"]} if "authorization" in request.headers else {}
        mreq = await off_loop(len(raw), rmap.to_request, data, prior + items, headers)
        echo = rmap.echo_of(data)
        echo["previous_response_id"] = data.get("previous_response_id")
        keep = self.store is not None and data.get("store") is not False
        echo["store"] = keep
        return Turn(mreq, body.stream, echo, prior + items, keep, tenant)

    async def _prior(self, previous: Any, tenant: str) -> list[dict[str, Any]]:
        if previous is None:
            return []
        if self.store is None:
            raise ProxyError(400, "previous_response_id needs a response store, and this rein server keeps none: "
                                  "send the whole input, or start rein with --response-db (REIN_RESPONSE_DB)",
                             "previous_response_not_supported", "previous_response_id")
        if not isinstance(previous, str):
            raise ProxyError(400, "previous_response_id must be a string", "invalid_value", "previous_response_id")
        record = await self.store.get(previous, tenant)
        if record is None:
            raise ProxyError(404, f"previous response {previous!r} not found", "previous_response_not_found",
                             "previous_response_id")
        # Instructions are not carried over (as on OpenAI): the context holds input and output items only.
        return record["context"] + record["response"]["output"]

    def render(self, turn: Turn, final: ModelResponse) -> dict[str, Any]:
        return render(rmap.new_id("resp_"), final, turn.echo)

    def encoder(self, turn: Turn) -> ResponsesEncoder:
        return ResponsesEncoder(rmap.new_id("resp_"), turn.echo, turn.request.model or "")

    def error(self, status: int, message: str, code: str | None = None, param: str | None = None,
              headers: dict[str, str] | None = None) -> Response:
        return error_response(status, message, code, param, headers)  # the Responses API uses OpenAI's shape

    async def relay(self, agent: Any, raw: bytes, body: Body, request: Request, base: dict[str, str],
                    start: float) -> Response:
        """Bytes both ways: the upstream speaks Responses (``upstream_protocol``) and no stage runs."""
        headers = agent.headers({"authorization": request.headers.get("authorization", "")})
        fault = self.encoder(Turn(ModelRequest(messages=[]))).error
        return await relay_forward(agent, self.protocol, self.upstream_path, raw, body.data, headers, base, start, fault)

    async def kept(self, turn: Turn, body: dict[str, Any]) -> None:
        if turn.store and body.get("status") in ("completed", "incomplete"):
            await self.store.put(body["id"], {"response": body, "context": turn.context}, turn.tenant)

    # ---- GET / DELETE ----------------------------------------------------------------------
    async def stored(self, request: Request) -> Response:
        try:
            return await self._stored(request, request.path_params["response_id"])
        except Exception:  # a store that is down is a clear error, not a stack trace; the log has the rest
            log.exception("rein: the response store failed")
            return error_response(503, "the response store failed", "response_store_unavailable")

    async def _stored(self, request: Request, resp_id: str) -> Response:
        if self.store is None:
            return error_response(404, "this rein server keeps no responses (start it with --response-db to keep them)",
                                  "response_store_not_configured")
        tenant = tenant_of(request)
        if request.method == "DELETE":
            if await self.store.delete(resp_id, tenant):
                return Response(orjson.dumps({"id": resp_id, "object": "response.deleted", "deleted": True}),
                                media_type="application/json")
        else:
            record = await self.store.get(resp_id, tenant)
            if record is not None:
                return Response(orjson.dumps(record["response"]), media_type="application/json")
        return error_response(404, f"response {resp_id!r} not found", "response_not_found")
