"""litellm (``openai/...`` with an api_base) against a respx-mocked upstream.

tests/conftest.py sets DISABLE_AIOHTTP_TRANSPORT so litellm's calls go through httpx, where respx sees them.
"""
from __future__ import annotations

import json

import httpx
import orjson
import pytest
import respx

from middleware.models import resolve_model
from middleware.models.chunks import ChunkAccumulator
from middleware.models.litellm_model import LiteLLMModel
from policies.messages import parse_messages
from policies.chat_model import ModelError, ModelRequest

BASE = "http://upstream.test/v1"
URL = BASE + "/chat/completions"
TOOLS = [{"type": "function", "function": {"name": "lookup", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}}}]


def completion(message: dict, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-x",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}}


def sse(*chunks: dict) -> bytes:
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> dict:
    c = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
         "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        c["usage"] = usage
    return c


def ask(text: str = "hi", **fields) -> ModelRequest:
    return ModelRequest(messages=parse_messages([{"role": "user", "content": text}]), **fields)


@pytest.fixture
def model():
    return LiteLLMModel("openai/gpt-x", api_key="sk-test", api_base=BASE, timeout=5)


def test_provider_strings_go_through_litellm():
    m = resolve_model("anthropic/claude-sonnet-4-5", api_key="k")
    assert isinstance(m, LiteLLMModel) and m.model == "anthropic/claude-sonnet-4-5"


@respx.mock
async def test_complete_sends_tools_and_extra_fields_and_reads_usage(model):
    route = respx.post(URL).mock(return_value=httpx.Response(200, json=completion({"role": "assistant", "content": "Done."})))
    resp = await model.complete(ask("cancel A1", tools=TOOLS, tool_choice="auto",
                                    extra={"temperature": 0.2, "seed": 3, "vendor_flag": "on"}))
    assert resp.message.content == "Done." and resp.finish_reason == "stop"
    assert resp.usage["prompt_tokens"] == 11 and resp.usage["completion_tokens"] == 4
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-x" and sent["messages"] == [{"role": "user", "content": "cancel A1"}]
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto"
    assert sent["temperature"] == 0.2 and sent["seed"] == 3 and sent["vendor_flag"] == "on"
    assert "max_retries" not in sent
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"


@respx.mock
async def test_complete_returns_tool_calls(model):
    call = {"id": "call_9", "type": "function", "function": {"name": "lookup", "arguments": '{"id": "A1"}'}}
    respx.post(URL).mock(return_value=httpx.Response(200, json=completion(
        {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")))
    resp = await model.complete(ask("find A1", tools=TOOLS))
    got = resp.message.tool_calls[0]
    assert (got.id, got.function.name, json.loads(got.function.arguments)) == ("call_9", "lookup", {"id": "A1"})
    assert resp.finish_reason == "tool_calls"


@respx.mock
async def test_stream_yields_openai_chunks(model):
    body = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
               chunk({}, "stop"), chunk({}, usage={"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}))
    route = respx.post(URL).mock(return_value=httpx.Response(200, content=body,
                                                             headers={"content-type": "text/event-stream"}))
    chunks = [c async for c in model.stream(ask(extra={"stream_options": {"include_usage": True}}))]
    resp = ChunkAccumulator().extend(chunks).response()
    assert resp.message.content == "Hello" and resp.finish_reason == "stop"
    assert json.loads(route.calls.last.request.content)["stream"] is True


@pytest.mark.parametrize("side_effect, status", [
    (httpx.Response(500, json={"error": {"message": "boom", "type": "server_error"}}), 502),
    (httpx.Response(503, text="unavailable"), 502),
    (httpx.ConnectError("connection refused"), 502),
    (httpx.ReadTimeout("too slow"), 504),
    (httpx.Response(400, json={"error": {"message": "bad tool schema", "type": "invalid_request_error"}}), 400),
    # The same map as the fast path's (policies.chat_model.PASSED_THROUGH_STATUS): 409 and 413 pass too.
    (httpx.Response(409, json={"error": {"message": "conflict", "type": "invalid_request_error"}}), 409),
    (httpx.Response(413, json={"error": {"message": "too large", "type": "invalid_request_error"}}), 413),
    (httpx.Response(200, text="<html>not json</html>"), 502),
])
@respx.mock
async def test_failures_map_to_proxy_statuses(model, side_effect, status):
    if isinstance(side_effect, Exception):
        respx.post(URL).mock(side_effect=side_effect)
    else:
        respx.post(URL).mock(return_value=side_effect)
    with pytest.raises(ModelError) as e:
        await model.complete(ask())
    assert e.value.status == status, e.value.message
    if status == 400:
        assert "bad tool schema" in e.value.message


@respx.mock
async def test_stream_failure_is_a_model_error(model):
    respx.post(URL).mock(return_value=httpx.Response(500, json={"error": {"message": "down"}}))
    with pytest.raises(ModelError) as e:
        [c async for c in model.stream(ask())]
    assert e.value.status == 502


@pytest.mark.parametrize("policy", ["passthrough", "default"])
@respx.mock
async def test_through_the_proxy_with_the_openai_client(policy):
    from fake_upstream import openai_client

    from middleware.config import Settings
    from middleware.engine import Engine
    from middleware.proxy import create_app

    body = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi "}), chunk({"content": "there"}),
               chunk({}, "stop"), chunk({}, usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}))
    route = respx.post(URL).mock(side_effect=[
        httpx.Response(200, json=completion({"role": "assistant", "content": "Hello."})),
        httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})])
    model = LiteLLMModel("openai/gpt-x", api_key="sk-test", api_base=BASE, timeout=5)
    async with openai_client(create_app(Settings(policy=policy), Engine(model, policy))) as client:
        resp = await client.chat.completions.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}],
                                                    extra_body={"vendor_flag": "on"})
        chunks = [c async for c in await client.chat.completions.create(
            model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True,
            stream_options={"include_usage": True})]
    assert resp.choices[0].message.content == "Hello." and resp.usage.total_tokens == 15
    assert json.loads(route.calls[0].request.content)["vendor_flag"] == "on"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
    assert [c.usage.total_tokens for c in chunks if c.usage] == [5]
