"""Internals never reach clients (issue 20, defect 7): the passthrough relay's network failures,
a broken upstream stream, an upstream's error body, x-rein-fail-open and 400 bodies say what failed
in the protocol's words, with no Python exception name or message and no internal address; the
log keeps the detail."""
from __future__ import annotations

import logging
import re

import httpx
import pytest
from aiohttp import web
from fake_upstream import asgi_client, free_port
from protocol_doubles import app_for

from middleware.models import OpenAICompatModel, ScriptedModel
from middleware.proxy.headers import state_headers

INTERNALS = re.compile(r"[A-Z][A-Za-z]*(Error|Exception)\b|unhashable|got multiple values|Cannot connect|"
                       r"(?<![\w.])\d{1,3}(\.\d{1,3}){3}(?!\d|\.\d)|localhost:\d+|:\d{4,5}\b|ssl:default|Traceback")
BODIES = {"responses": ("/v1/responses", {"model": "m", "input": "hi"}),
          "messages": ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})}


def visible(r) -> str:
    return r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items() if k.startswith("x-rein"))


class Broken:
    """An upstream on loopback: a stream that breaks mid-chunk, or an error body naming its hosts."""

    def __init__(self) -> None:
        self.app = web.Application()
        self.app.router.add_post("/v1/{path:.*}", self.answer)
        self.port = free_port()

    async def answer(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("model") == "leaky":
            return web.json_response({"error": {"message": "backend http://10.1.2.3:8000/v1 refused: "
                                                           "ConnectionRefusedError at vllm-0:8000"}}, status=503)
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        await resp.write(b'data: {"type": "response.created"}\n\n')
        request.transport.close()  # mid-body: the client reads a chunked body that never ends
        return resp

    async def __aenter__(self) -> str:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}/v1"

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()


@pytest.mark.parametrize("protocol", list(BODIES))
async def test_relay_unreachable_names_no_address(protocol, caplog):
    route, body = BODIES[protocol]
    agent = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", timeout=5)  # nothing listens there
    caplog.set_level(logging.WARNING, "rein.proxy")
    async with asgi_client(app_for(agent, "passthrough", upstream_protocol=protocol)) as c:
        for stream in (False, True):
            r = await c.post(route, json={**body, "stream": stream})
            assert r.status_code == 502, r.text
            assert "upstream unreachable" in r.text and not INTERNALS.search(visible(r)), visible(r)
    await agent.pool.close()
    assert "127.0.0.1" in caplog.text  # the operator's log keeps where


@pytest.mark.parametrize("protocol", list(BODIES))
async def test_relay_broken_stream_and_leaky_error_body_are_redacted(protocol, caplog):
    route, body = BODIES[protocol]
    caplog.set_level(logging.WARNING, "rein.proxy")
    async with Broken() as url:
        agent = OpenAICompatModel(url, timeout=5)
        async with asgi_client(app_for(agent, "passthrough", upstream_protocol=protocol)) as c:
            broken = await c.post(route, json={**body, "stream": True})
            leaky = await c.post(route, json={**body, "model": "leaky", "stream": True})
            leaky_plain = await c.post(route, json={**body, "model": "leaky"})
        await agent.pool.close()
    assert broken.status_code == 200 and "stream broke off" in broken.text, broken.text
    assert not INTERNALS.search(visible(broken)), visible(broken)
    assert "TransferEncodingError" in caplog.text or "ClientPayloadError" in caplog.text  # the log has it
    for r in (leaky, leaky_plain):
        assert r.status_code == 503 and "refused" in r.text  # the upstream's own words, less its addresses
        assert not INTERNALS.search(visible(r)), visible(r)


def test_fail_open_header_says_what_failed_not_the_python_message():
    notes = ["factuality: TypeError: sequence item 0: expected str instance, int found",
             "persona store: ValueError: could not convert string to float: 'x'",
             "coherence: over budget (2s)"]
    header = state_headers({"notes": notes})["x-rein-fail-open"]
    assert header == "factuality: failed; persona store: failed; coherence: over budget (2s)"


@pytest.mark.parametrize("item", [
    {"type": "function_call_output", "call_id": ["a"], "output": "x"},           # unhashable type: 'list'
    {"type": "function_call", "call_id": "c1", "name": "f", "function": {}},     # ToolCall() got multiple values
])
async def test_400_bodies_carry_no_python_messages(item):
    agent = ScriptedModel(["fine"], cycle=True)
    async with asgi_client(app_for(agent, "structural")) as c:
        r = await c.post("/v1/responses", json={"model": "m", "input": [{"role": "user", "content": "hi"}, item]})
    assert r.status_code == 400, r.text
    assert not INTERNALS.search(r.text), r.text
    assert r.json()["error"]["param"].startswith("input.1")


async def test_an_unexpected_failure_is_a_500_without_its_name(caplog):
    class Exploding(ScriptedModel):
        async def complete(self, request):
            raise KeyError("secret-internal-key")

    caplog.set_level(logging.ERROR)
    for route, body in BODIES.values():
        async with asgi_client(app_for(Exploding([]), "structural")) as c:
            r = await c.post(route, json=body)
        assert r.status_code == 500 and "secret-internal-key" not in r.text and "KeyError" not in r.text, r.text
    # Starlette's error middleware answers and then re-raises for the server's log: the transport must not
    transport = httpx.ASGITransport(app=app_for(Exploding([]), "structural"), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://rein.test") as c:
        r = await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 500 and "KeyError" not in r.text, r.text
    assert "secret-internal-key" in caplog.text


async def test_readyz_and_the_admin_endpoints_name_no_exception(caplog):
    class Unready(ScriptedModel):
        async def probe(self):
            raise ConnectionRefusedError("[Errno 111] Connect call failed ('10.0.0.7', 8000)")

    class BrokenStore:
        async def get(self, user, tenant):
            raise ValueError("database disk image is malformed at /var/lib/rein/p.db")

        delete = get

    caplog.set_level(logging.WARNING)
    app = app_for(Unready([]), "structural", admin_key="adm")
    app.state.engine.personas = BrokenStore()
    async with asgi_client(app) as c:
        ready = await c.get("/readyz")
        read = await c.get("/v1/rein/profiles/alice", headers={"x-rein-admin-key": "adm"})
        gone = await c.delete("/v1/rein/profiles/alice", headers={"x-rein-admin-key": "adm"})
    assert ready.status_code == 503 and "upstream probe failed" in ready.text
    for r in (ready, read, gone):
        assert not INTERNALS.search(r.text) and "malformed" not in r.text, r.text
    assert read.status_code == gone.status_code == 502 and "persona store failed" in read.text
    assert "10.0.0.7" in caplog.text and "malformed" in caplog.text  # the log keeps why
