"""Upstream faults: the right status (or SSE error event), never a hang, and the next request works.

The fast path talks to ``fake_upstream`` over loopback; the model name picks the fault.
"""
from __future__ import annotations

import asyncio

import httpx
import openai
import orjson
import pytest
import respx
from fake_upstream import FakeUpstream, asgi_client, free_port, openai_client

from middleware.config import Settings
from middleware.engine import Engine
from inception.base import Diagnosis, NoInception
from middleware.models import OpenAICompatModel, ScriptedModel
from middleware.models.litellm_model import LiteLLMModel
from middleware.proxy import create_app
from policies.loader import load_policy, shipped
from policies.schema import Budgets

POLICIES = [p for p in ("passthrough", "structural", "default") if p in shipped()]
URL = "/v1/chat/completions"
TIMEOUT_S = 0.5  # generous for a normal reply on a loaded machine, short for the slow fakes


def body(model: str, stream: bool = False) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "hello"}], "stream": stream}


def events(text: str) -> list[bytes]:
    return [line[6:].encode() for line in text.split("\n") if line.startswith("data: ")]


@pytest.fixture(params=POLICIES)
async def proxy(request):
    async with FakeUpstream(slow_s=TIMEOUT_S * 6) as up:
        agent = OpenAICompatModel(up.base_url, timeout=TIMEOUT_S)
        app = create_app(Settings(policy=request.param), Engine(agent, request.param))
        async with asgi_client(app, timeout=10) as client:
            yield client
        await agent.pool.close()


async def served_normally(client: httpx.AsyncClient) -> None:
    ok = await client.post(URL, json=body("gpt-test"))
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "Echo: hello"
    streamed = await client.post(URL, json=body("gpt-test", stream=True))
    assert streamed.status_code == 200 and events(streamed.text)[-1] == b"[DONE]"


def assert_error(resp: httpx.Response, status: int, fragment: str) -> None:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert fragment in err["message"] and err["type"] and err["code"]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("model, status, fragment", [
    ("fake-500", 502, "upstream returned HTTP 500: the fake upstream fell over"),
    ("fake-slow", 504, "timed out"),
    ("fake-garbage", 502, "upstream"),
    ("fake-html", 502, "upstream"),
])
async def test_upstream_fault_before_any_byte_is_an_http_error(proxy, model, status, fragment, stream):
    resp = await asyncio.wait_for(proxy.post(URL, json=body(model, stream)), 5)
    assert_error(resp, status, fragment)
    await served_normally(proxy)


async def test_upstream_429_passes_through_with_retry_after(proxy):
    resp = await proxy.post(URL, json=body("fake-429"))
    assert_error(resp, 429, "slow down")
    assert resp.headers["retry-after"] == "7"
    await served_normally(proxy)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("stream", [False, True])
async def test_refused_connection_is_502(policy, stream):
    agent = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    app = create_app(Settings(policy=policy), Engine(agent, policy))
    async with asgi_client(app) as client:
        assert_error(await client.post(URL, json=body("gpt-test", stream)), 502, "upstream unreachable")
        assert (await client.get("/healthz")).status_code == 200
    await agent.pool.close()


@pytest.mark.parametrize("model, status", [("fake-break", 502), ("fake-stall", 504)])
async def test_a_stream_that_breaks_midway_ends_with_an_error_event(proxy, model, status):
    resp = await asyncio.wait_for(proxy.post(URL, json=body(model, stream=True)), 5)
    assert resp.status_code == 200  # the first chunk was already on its way
    got = events(resp.text)
    assert orjson.loads(got[0])["choices"][0]["delta"]["role"] == "assistant"
    error = orjson.loads(got[-1])["error"]
    assert error["code"] and error["type"] and "upstream" in error["message"]
    assert b"[DONE]" not in got  # a client must not take a broken reply for a whole one
    await served_normally(proxy)


async def test_the_openai_client_sees_a_broken_stream_as_an_error(proxy):
    client = openai.AsyncOpenAI(base_url="http://rein.test/v1", api_key="k", max_retries=0, http_client=proxy)
    stream = await client.chat.completions.create(**body("fake-break", stream=True))
    with pytest.raises(openai.APIError, match="upstream"):
        async for _ in stream:
            pass
    await served_normally(proxy)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("fault, status", [
    (httpx.Response(500, json={"error": {"message": "down"}}), 502),
    (httpx.ConnectError("refused"), 502),
    (httpx.ReadTimeout("slow"), 504),
])
@pytest.mark.parametrize("stream", [False, True])
async def test_litellm_upstream_faults(policy, fault, status, stream):
    agent = LiteLLMModel("openai/gpt-x", api_key="k", api_base="http://upstream.test/v1", timeout=5)
    app = create_app(Settings(policy=policy), Engine(agent, policy))
    with respx.mock(base_url="http://upstream.test/v1") as mock:
        route = mock.post("/chat/completions")
        route.side_effect = fault if isinstance(fault, Exception) else None
        if not isinstance(fault, Exception):
            route.return_value = fault
        async with openai_client(app) as client:
            with pytest.raises(openai.APIStatusError) as e:
                await client.chat.completions.create(**body("gpt-x", stream))
            assert e.value.status_code == status
            assert e.value.body["message"]
            route.side_effect, route.return_value = None, httpx.Response(200, json={
                "id": "c", "object": "chat.completion", "created": 1, "model": "gpt-x",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "back"}, "finish_reason": "stop"}]})
            assert (await client.chat.completions.create(**body("gpt-x"))).choices[0].message.content == "back"


class SlowInception(NoInception):
    async def diagnose(self, messages, tools):
        await asyncio.sleep(5)
        return Diagnosis()


@pytest.mark.parametrize("stream", [False, True])
async def test_a_rein_stage_past_its_budget_is_skipped_and_said_so(stream):
    policy = load_policy("default").model_copy(update={"budgets": Budgets(model_timeout_s=0.05, max_calls_per_turn=1)})
    engine = Engine(ScriptedModel(["Still here."], cycle=True), policy)
    engine.pipeline().inception = SlowInception()
    async with asgi_client(create_app(Settings(), engine)) as client:
        resp = await asyncio.wait_for(client.post(URL, json=body("m", stream)), 3)
    assert resp.status_code == 200
    text = resp.json()["choices"][0]["message"]["content"] if not stream else "".join(
        (orjson.loads(e)["choices"][0]["delta"].get("content") or "") for e in events(resp.text)[:-1])
    assert text == "Still here."
    assert "diagnose: over budget (0.05s)" in resp.headers["x-rein-fail-open"]
