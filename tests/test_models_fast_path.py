"""The OpenAI-compatible fast path (aiohttp) against a real loopback upstream.

respx cannot see aiohttp, so this talks to ``fake_upstream`` over 127.0.0.1.
"""
from __future__ import annotations

import json

import orjson
import pytest
from fake_upstream import FakeUpstream, free_port

from middleware.models import OpenAICompatModel, resolve_model
from middleware.models.chunks import ChunkAccumulator
from policies.messages import parse_messages
from policies.chat_model import ModelError, ModelRequest

TOOLS = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}]


def ask(text: str = "hi", model: str = "gpt-test", **fields) -> ModelRequest:
    return ModelRequest(messages=parse_messages([{"role": "user", "content": text}]), model=model, **fields)


@pytest.fixture
async def upstream():
    async with FakeUpstream(slow_s=2.0) as up:
        yield up


@pytest.fixture
async def model(upstream):
    m = OpenAICompatModel(upstream.base_url, timeout=5)
    yield m
    await m.pool.close()


def test_http_specs_take_the_fast_path():
    assert isinstance(resolve_model("http://127.0.0.1:9/v1"), OpenAICompatModel)


async def test_complete_returns_message_usage_and_raw_fields(model, upstream):
    resp = await model.complete(ask("hello world", extra={"temperature": 0.5, "vendor_x": [1]}))
    assert resp.message.content == "Echo: hello world"
    assert resp.usage == {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    assert resp.finish_reason == "stop" and resp.raw["system_fingerprint"] == "fp_fake"
    sent = upstream.requests[-1].body
    assert sent["temperature"] == 0.5 and sent["vendor_x"] == [1] and sent["model"] == "gpt-test"
    assert "stream" not in sent


async def test_complete_with_tools_returns_the_tool_call(model, upstream):
    resp = await model.complete(ask("find A1", tools=TOOLS, tool_choice="required"))
    call = resp.message.tool_calls[0]
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"query": "find A1"}
    assert resp.finish_reason == "tool_calls"
    assert upstream.requests[-1].body["tool_choice"] == "required"


async def test_stream_yields_chunks_that_add_up(model):
    chunks = [c async for c in model.stream(ask("a b c", extra={"stream_options": {"include_usage": True}}))]
    resp = ChunkAccumulator().extend(chunks).response()
    assert resp.message.content == "Echo: a b c"
    assert resp.usage["completion_tokens"] == 4


async def test_relay_passes_bytes_through(model):
    raw, parsed = await model.relay(orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}]}))
    assert orjson.loads(raw) == parsed and parsed["choices"][0]["message"]["content"] == "Echo: x"


async def test_own_key_wins_over_the_callers(upstream):
    for key, expected in ((None, "Bearer caller"), ("sk-own", "Bearer sk-own")):
        m = OpenAICompatModel(upstream.base_url, api_key=key)
        await m.complete(ask(headers={"authorization": "Bearer caller"}))
        await m.pool.close()
        assert upstream.requests[-1].headers["authorization"] == expected


async def test_list_models_reads_the_upstream(model):
    assert [m["id"] for m in await model.list_models()] == ["fake-model"]


async def test_refused_connection_is_502():
    m = OpenAICompatModel(f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    with pytest.raises(ModelError) as e:
        await m.complete(ask())
    await m.pool.close()
    assert e.value.status == 502 and e.value.code == "upstream_unreachable"


@pytest.mark.parametrize("name, status, code", [
    ("fake-500", 502, "upstream_error"),
    ("fake-garbage", 502, "bad_upstream_response"),
    ("fake-html", 502, "bad_upstream_response"),
    ("fake-429", 429, "upstream_429"),
])
@pytest.mark.parametrize("streaming", [False, True])
async def test_upstream_failures_map_to_statuses(model, name, status, code, streaming):
    with pytest.raises(ModelError) as e:
        if streaming:
            [c async for c in model.stream(ask(model=name))]
        else:
            await model.complete(ask(model=name))
    if streaming and name in ("fake-garbage", "fake-html"):
        code = "bad_upstream_response"  # a 200 that is not an event stream
    assert (e.value.status, e.value.code) == (status, code)
    if name == "fake-429":
        assert e.value.headers == {"retry-after": "7"}


async def test_slower_than_the_timeout_is_504(upstream):
    m = OpenAICompatModel(upstream.base_url, timeout=0.5)
    with pytest.raises(ModelError) as e:
        await m.complete(ask(model="fake-slow"))
    assert e.value.status == 504
    assert (await m.complete(ask("again"))).message.content == "Echo: again"  # the pool still works
    await m.pool.close()


async def test_a_stream_that_drops_raises_after_what_arrived(model):
    got = []
    with pytest.raises(ModelError) as e:
        async for c in model.stream(ask(model="fake-break")):
            got.append(c)
    assert len(got) == 2 and e.value.status == 502 and e.value.code == "upstream_stream_broken"


async def test_a_stalled_stream_times_out(upstream):
    m = OpenAICompatModel(upstream.base_url, timeout=0.5)
    with pytest.raises(ModelError) as e:
        [c async for c in m.stream(ask(model="fake-stall"))]
    await m.pool.close()
    assert e.value.status == 504
