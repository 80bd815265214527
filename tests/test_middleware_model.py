"""rein's own prompts go only to a middleware model the operator named (DESIGN: External interfaces).

With none, ``default`` runs its rules only and says so at start-up and in a header; ``upstream``
reuses the upstream on purpose. The same rule holds in the SDK."""
from __future__ import annotations

import logging

import pytest
from fake_upstream import asgi_client

from middleware import Rein
from middleware.cli import main
from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, OpenAICompatModel
from middleware.proxy import create_app
from middleware.proxy.ops.rules_only import wrap

# A turn the model module is asked about under `default` (a signal word, no structural finding).
MERGE = [{"role": "user", "content": "Can you merge my orders W1001 and W1002?"}]
# A tool that failed in this turn: the rules find it with no model at all.
FAILED_TOOL = [
    {"role": "user", "content": "Where is order W1001?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "W1001"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: upstream timeout"},
]
TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look an order up.",
                                           "parameters": {"type": "object", "properties": {
                                               "order_id": {"type": "string"}}}}}]


def agent_model():
    return FunctionModel(lambda r: "Sorry, the lookup failed. Shall I try again?", name="agent")


def test_the_middleware_model_is_none_unless_named():
    plain = Engine.from_settings(Settings(upstream="http://agent:8000/v1", policy="default"))
    assert isinstance(plain.agent, OpenAICompatModel) and plain.rein_model is None
    assert plain.rules_only() == "policy 'default' runs its rules only: no middleware model named"
    reused = Engine.from_settings(Settings(upstream="http://agent:8000/v1", middleware_model="upstream"))
    assert reused.rein_model is reused.agent and reused.rules_only() is None
    named = Engine.from_settings(Settings(upstream="http://agent:8000/v1", middleware_model="http://judge:9000/v1"))
    assert named.rein_model is not named.agent and named.rein_model.base_url.startswith("http://judge:9000")
    assert Engine.from_settings(Settings(upstream="http://agent:8000/v1", policy="structural")).rules_only() is None


async def test_without_one_the_upstream_gets_only_the_turn_and_the_answer_says_rules_only():
    agent = agent_model()
    engine = Engine(agent, "default")
    async with asgi_client(wrap(create_app(Settings(policy="default"), engine), engine)) as client:
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": FAILED_TOOL, "tools": TOOLS})
    assert r.status_code == 200, r.text
    assert r.headers["x-rein-model-stages"] == "off (policy 'default' runs its rules only: no middleware model named)"
    assert r.headers["x-rein-diagnosis"] != "none"  # the rules still ran
    async with asgi_client(wrap(create_app(Settings(policy="default"), engine), engine)) as client:
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": MERGE, "tools": TOOLS})
    assert len(agent.requests) == 2  # each turn's own call: no diagnosis or refiner prompt reached it


async def test_upstream_named_on_purpose_gets_reins_prompts_and_no_header():
    agent = agent_model()
    engine = Engine(agent, "default", rein_model=agent)
    async with asgi_client(wrap(create_app(Settings(policy="default"), engine), engine)) as client:
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": MERGE, "tools": TOOLS})
    assert r.status_code == 200 and "x-rein-model-stages" not in r.headers
    assert len(agent.requests) > 1


def test_serve_says_so_once_at_start_up(monkeypatch, capsys):
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: None)
    assert main(["serve", "--upstream", "http://agent:8000/v1", "--policy", "default"]) == 0
    err = capsys.readouterr().err
    assert err.count("runs its rules only") == 1 and "--middleware-model MODEL, or 'upstream'" in err
    assert main(["serve", "--upstream", "http://agent:8000/v1", "--middleware-model", "upstream"]) == 0
    assert "rules only" not in capsys.readouterr().err


def test_the_sdk_follows_the_same_rule(caplog):
    calls = []

    with caplog.at_level(logging.WARNING, logger="rein"):
        rein = Rein(policy="default")

    @rein.guard
    def agent(messages, tools=None):
        calls.append(messages)
        return "Sorry, the lookup failed. Shall I try again?"

    reply = agent(FAILED_TOOL, TOOLS)
    assert len(calls) == 1 and reply.rein.diagnosis.header() != "none"
    assert rein.engine.rein_model is None
    assert [r.getMessage() for r in caplog.records] == [
        "policy 'default' runs its rules only: no middleware model named (pass Rein(rein_model=...) to run its "
        "model stages)"]
    model = agent_model()
    assert Rein(policy="default", model=model, rein_model="upstream").engine.rein_model is model
    with pytest.raises(ValueError, match="reuses model="):
        Rein(policy="default", rein_model="upstream")
