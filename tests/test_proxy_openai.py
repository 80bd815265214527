"""The official ``openai`` client against rein's proxy, in front of a loopback OpenAI-compatible upstream."""
from __future__ import annotations

import json

import pytest
from fake_upstream import FakeUpstream, asgi_client, openai_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel, ScriptedModel, tool_call
from middleware.proxy import create_app
from policies.loader import shipped

POLICIES = [p for p in ("passthrough", "structural", "default") if p in shipped()]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}}}]


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def rein(upstream, request):
    """(app, agent) with the policy named by the test's ``policy`` parameter."""
    policy = getattr(request, "param", "passthrough")
    agent = OpenAICompatModel(upstream.base_url)
    app = create_app(Settings(policy=policy), Engine(agent, policy))
    yield app
    await agent.pool.close()


def app_for(agent, policy: str, **settings):
    return create_app(Settings(policy=policy, **settings), Engine(agent, policy))


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_answer_usage_and_upstream_fields_come_back(rein, upstream):
    async with openai_client(rein) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=[{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "hello there"}])
        resp = raw.parse()
    assert resp.choices[0].message.content == "Echo: hello there"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 4 and resp.usage.completion_tokens == 3 and resp.usage.total_tokens == 7
    assert resp.system_fingerprint == "fp_fake"  # a field rein does not model survives
    assert float(raw.headers["x-rein-overhead-ms"]) >= 0
    assert raw.headers["x-rein-policy"] in POLICIES
    assert upstream.requests[-1].body["model"] == "gpt-test"


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_stream_arrives_in_order_with_usage(rein):
    async with openai_client(rein) as client:
        stream = await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "one two three"}], stream=True,
            stream_options={"include_usage": True})
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = [c.usage for c in chunks if c.usage]
    assert usage and usage[-1].prompt_tokens == 3


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_tool_call_round_trip(rein, upstream, stream):
    messages = [{"role": "user", "content": "weather in Oslo"}]
    async with openai_client(rein) as client:
        if stream:
            chunks = [c async for c in await client.chat.completions.create(
                model="gpt-test", messages=messages, tools=WEATHER, tool_choice="auto", stream=True)]
            deltas = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
            call_id = next(d.id for d in deltas if d.id)
            name = "".join(d.function.name or "" for d in deltas)
            arguments = "".join(d.function.arguments or "" for d in deltas)
            assert chunks[-1].choices[0].finish_reason == "tool_calls"
        else:
            first = await client.chat.completions.create(model="gpt-test", messages=messages, tools=WEATHER,
                                                         tool_choice="auto")
            assert first.choices[0].finish_reason == "tool_calls"
            call = first.choices[0].message.tool_calls[0]
            call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assert name == "get_weather" and json.loads(arguments) == {"query": "weather in Oslo"}
        messages += [{"role": "assistant", "content": None, "tool_calls": [
                         {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
                     {"role": "tool", "tool_call_id": call_id, "content": "12C and rain"}]
        second = await client.chat.completions.create(model="gpt-test", messages=messages, tools=WEATHER)
    assert second.choices[0].message.content == "The tool said: 12C and rain"
    sent = upstream.requests[-1].body
    assert sent["tools"] == WEATHER
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call_id, "content": "12C and rain"}
    assert sent["messages"][-2]["tool_calls"][0]["id"] == call_id


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_unknown_request_fields_reach_the_upstream(rein, upstream):
    async with openai_client(rein) as client:
        await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], temperature=0.25, seed=7,
            max_tokens=9, extra_body={"top_k": 5, "vendor_options": {"cache": "on", "tags": ["a", "b"]}})
        await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}], stream=True,
            extra_body={"vendor_options": {"cache": "off"}})
    sent, streamed = upstream.requests[-2].body, upstream.requests[-1].body
    assert sent["temperature"] == 0.25 and sent["seed"] == 7 and sent["max_tokens"] == 9
    assert sent["top_k"] == 5 and sent["vendor_options"] == {"cache": "on", "tags": ["a", "b"]}
    assert streamed["vendor_options"] == {"cache": "off"} and streamed["stream"] is True


@pytest.mark.parametrize("policy", POLICIES)
async def test_callers_authorization_reaches_an_openai_compatible_upstream(upstream, policy):
    agent = OpenAICompatModel(upstream.base_url)
    async with openai_client(app_for(agent, policy), api_key="sk-caller-123") as client:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    await agent.pool.close()
    assert [r.headers["authorization"] for r in upstream.requests] == ["Bearer sk-caller-123"] * 2


@pytest.mark.parametrize("policy", POLICIES)
async def test_reins_own_key_replaces_the_callers(upstream, policy):
    agent = OpenAICompatModel(upstream.base_url, api_key="sk-rein-own")
    async with openai_client(app_for(agent, policy), api_key="sk-caller-123") as client:
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    await agent.pool.close()
    assert [r.headers["authorization"] for r in upstream.requests] == ["Bearer sk-rein-own"] * 2


async def test_pipeline_relays_tool_calls_from_a_scripted_agent():
    agent = ScriptedModel([tool_call("get_weather", {"query": "Oslo"}, id="call_a"), "It rains in Oslo."])
    async with openai_client(app_for(agent, "default")) as client:
        first = await client.chat.completions.create(model="m", tools=WEATHER,
                                                     messages=[{"role": "user", "content": "Oslo?"}])
        call = first.choices[0].message.tool_calls[0]
        assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_a", "get_weather", {"query": "Oslo"})
        second = await client.chat.completions.create(model="m", tools=WEATHER, messages=[
            {"role": "user", "content": "Oslo?"}, first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": "call_a", "content": "rain"}])
    assert second.choices[0].message.content == "It rains in Oslo."
    assert agent.requests[1].messages[-1].tool_call_id == "call_a"
    assert agent.requests[1].tools == WEATHER


async def test_models_health_and_readiness(rein):
    async with asgi_client(rein) as http:
        models = (await http.get("/v1/models")).json()
        assert models["object"] == "list" and models["data"][0]["id"] == "fake-model"
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_openapi_documents_the_chat_route(rein):
    async with asgi_client(rein) as http:
        schema = (await http.get("/openapi.json")).json()
        assert (await http.get("/v1/chat/completions")).status_code == 405
    post = schema["paths"]["/v1/chat/completions"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ChatCompletionRequest"
    assert "messages" in schema["components"]["schemas"]["ChatCompletionRequest"]["properties"]
