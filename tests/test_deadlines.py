"""Deadlines that bound streams (issue 14, defects 3 and 6): a total deadline per request, an idle
timeout inside an upstream stream, and drain's grace cut, each ending a stream with an SSE error
event the client can read (never a truncated body). Timings are generous: only the outcome is held."""
from __future__ import annotations

import asyncio
import signal

import httpx
import orjson
import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel
from middleware.proxy import create_app
from tests.fake_upstream import FakeUpstream, ThreadedUpstream, asgi_client
from tests.test_ops_serve import start_rein, stop

CHAT = {"messages": [{"role": "user", "content": "hello there"}]}


def last_event(text: str) -> dict:
    events = [line[6:] for line in text.split("\n") if line.startswith("data: ")]
    assert events and events[-1] != "[DONE]", text[-300:]
    return orjson.loads(events[-1])["error"]


@pytest.mark.parametrize("policy", ["passthrough", "structural", "default"])
async def test_a_stream_that_trickles_forever_ends_at_the_deadline_with_an_error_event(policy):
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, timeout=30)
        app = create_app(Settings(policy=policy, request_deadline_s=1.0), Engine(agent, policy))
        async with asgi_client(app, timeout=30) as c:
            r = await c.post("/v1/chat/completions", json={**CHAT, "model": "fake-trickle", "stream": True})
        await agent.pool.close()
    assert r.status_code == 200
    error = last_event(r.text)
    assert error["code"] == "deadline_exceeded" and "deadline of 1 s" in error["message"]


@pytest.mark.parametrize("policy", ["passthrough", "default"])
async def test_a_request_past_its_deadline_before_any_byte_is_a_504(policy):
    async with FakeUpstream(slow_s=10) as up:
        agent = OpenAICompatModel(up.base_url, timeout=30)
        app = create_app(Settings(policy=policy, request_deadline_s=0.5), Engine(agent, policy))
        async with asgi_client(app, timeout=30) as c:
            r = await c.post("/v1/chat/completions", json={**CHAT, "model": "fake-slow"})
            after = await c.post("/v1/chat/completions", json={**CHAT, "model": "m"})
        await agent.pool.close()
    assert r.status_code == 504 and r.json()["error"]["code"] == "deadline_exceeded"
    assert after.status_code == 200  # the next request is served as usual


async def test_an_upstream_silent_past_the_idle_timeout_ends_the_stream_with_an_error_event():
    async with FakeUpstream(slow_s=10) as up:
        settings = Settings(policy="passthrough", upstream=up.base_url, stream_idle_timeout_s=0.5)
        engine = Engine.from_settings(settings)
        app = create_app(settings, engine)
        async with asgi_client(app, timeout=30) as c:
            r = await c.post("/v1/chat/completions", json={**CHAT, "model": "fake-stall", "stream": True})
        await engine.agent.pool.close()
    assert r.status_code == 200 and '"content":""' in r.text.replace(" ", "")  # the first chunk went out
    assert last_event(r.text)["code"] == "upstream_timeout"


async def test_sigterm_past_the_grace_period_ends_open_streams_with_an_error_event():
    with ThreadedUpstream(slow_s=30) as up:
        proc, url = start_rein("--upstream", up.base_url, "--policy", "passthrough", "--drain-timeout", "1",
                               "--timeout-graceful-shutdown", "1")
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as c:
                async def stream() -> str:
                    body = {**CHAT, "model": "fake-stall", "stream": True}
                    async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                        assert r.status_code == 200
                        return "".join([piece async for piece in r.aiter_text()])  # a cut body would raise here

                task = asyncio.create_task(stream())
                await asyncio.sleep(0.8)  # the stream is open, waiting on the stalled upstream
                proc.send_signal(signal.SIGTERM)
                text = await asyncio.wait_for(task, 20)
            error = last_event(text)
            assert error["code"] == "shutting_down", error
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            out = stop(proc)
        assert "grace period over" in out
