"""rein-owned tools never reach the client, even when the agent keeps calling them past the rounds
rein resolves (DESIGN: "rein-owned tools never appear in any of them")."""
from __future__ import annotations

from fake_upstream import asgi_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel, tool_call
from middleware.pipeline.routes import MAX_ROUNDS
from middleware.proxy import create_app

ASK = {"model": "m", "messages": [{"role": "user", "content": "Where is my order W1001?"}],
       "tools": [{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}]}


async def test_a_think_call_still_pending_after_the_last_round_is_dropped_and_said():
    agent = ScriptedModel([tool_call("think", {"thought": "hmm"})], cycle=True)
    app = create_app(Settings(policy="structural"), Engine(agent, "structural"))
    async with asgi_client(app) as client:
        r = await client.post("/v1/chat/completions", json=ASK)
    assert r.status_code == 200
    message = r.json()["choices"][0]["message"]
    assert not message.get("tool_calls") and message["content"]  # no think call, and a reply to show
    assert r.json()["choices"][0]["finish_reason"] == "stop"
    assert "think still called" in r.headers["x-rein-fail-open"]
    assert len(agent.requests) == MAX_ROUNDS


async def test_the_clients_own_call_beside_a_pending_think_call_goes_out_alone():
    both = tool_call("think", {"thought": "hmm"})
    both.tool_calls.append(tool_call("get_order", {"id": "W1001"}).tool_calls[0])
    agent = ScriptedModel([both], cycle=True)
    app = create_app(Settings(policy="structural"), Engine(agent, "structural"))
    async with asgi_client(app) as client:
        r = await client.post("/v1/chat/completions", json=ASK)
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["get_order"]
