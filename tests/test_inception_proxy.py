"""Inception through the proxy: x-rein-diagnosis, the plan reaching the agent, rein-owned tools held
from the client (plain and streamed), the draft check, the x-rein-policy permission, bad policies."""
from __future__ import annotations

import json

import pytest
from fake_upstream import asgi_client

from middleware.cli import main
from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel, tool_call
from middleware.proxy import create_app
from policies.loader import PolicyError, load_policy
from policies.chat_model import ModelError

URL = "/v1/chat/completions"
TOOLS = [{"type": "function", "function": {"name": "cancel_order", "description": "Cancel an order.", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]
VAGUE = [{"role": "user", "content": "what are my orders?"},
         {"role": "assistant", "content": "You have W1001 (desk lamp) and W1002 (office chair)."},
         {"role": "user", "content": "cancel it"}]
QUESTION = "Which one: W1001 (desk lamp) or W1002 (office chair)?"


def app_for(agent, policy="structural", allow_header=False):
    return create_app(Settings(policy=policy, allow_policy_header=allow_header),
                      Engine(agent, policy, rein_model=ScriptedModel([])))


async def test_diagnosis_header_plan_and_recovery_tool_end_to_end():
    agent = ScriptedModel([tool_call("ask_clarification", {"question": QUESTION})])
    async with asgi_client(app_for(agent)) as client:
        r = await client.post(URL, json={"model": "m", "messages": VAGUE, "tools": TOOLS})
    assert r.status_code == 200, r.text
    assert r.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"
    body = r.json()["choices"][0]
    # The recovery tool was answered inside rein: the client gets the question, not a tool call.
    assert body["message"]["content"] == QUESTION and not body["message"].get("tool_calls")
    assert body["finish_reason"] == "stop"
    seen = agent.requests[0]
    assert [t["function"]["name"] for t in seen.tools] == ["cancel_order", "think", "ask_clarification"]
    thought = json.loads(seen.messages[-2].tool_calls[0].function.arguments)["thought"]
    assert "W1001, W1002" in thought and "ask the user which one they mean" in thought
    assert seen.messages[0].content == VAGUE[0]["content"]  # no system prompt was added


async def test_clean_turn_says_none_and_the_agent_sees_the_request_unchanged():
    agent = ScriptedModel(["Order W1001 is cancelled."])
    clean = [{"role": "user", "content": "Cancel W1001 please."}]
    async with asgi_client(app_for(agent)) as client:
        r = await client.post(URL, json={"model": "m", "messages": clean, "tools": TOOLS})
    assert r.headers["x-rein-diagnosis"] == "none"
    assert agent.requests[0].tools == TOOLS and len(agent.requests[0].messages) == 1


def sse_events(text: str) -> list[dict]:
    return [json.loads(line[6:]) for line in text.splitlines()
            if line.startswith("data: ") and line != "data: [DONE]"]


async def test_streamed_think_call_never_reaches_the_client():
    agent = ScriptedModel([tool_call("think", {"thought": "two orders; ask"}), QUESTION])
    async with asgi_client(app_for(agent)) as client:
        r = await client.post(URL, json={"model": "m", "messages": VAGUE, "tools": TOOLS, "stream": True})
    assert r.status_code == 200 and r.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"
    events = sse_events(r.text)
    deltas = [e["choices"][0]["delta"] for e in events if e.get("choices")]
    assert not any(d.get("tool_calls") for d in deltas)
    assert "".join(d.get("content") or "" for d in deltas) == QUESTION
    assert len(agent.requests) == 2 and agent.requests[1].messages[-1].content == "Noted."


async def test_malformed_draft_tool_call_is_sent_back_once_with_the_error_planted():
    good = tool_call("cancel_order", {"order_id": "W1001"})
    agent = ScriptedModel([tool_call("cancel_orders", {"order_id": "W1001"}), good])
    clean = [{"role": "user", "content": "Cancel W1001 please."}]
    async with asgi_client(app_for(agent)) as client:
        r = await client.post(URL, json={"model": "m", "messages": clean, "tools": TOOLS})
    calls = r.json()["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["cancel_order"]
    assert r.headers["x-rein-diagnosis"] == "malformed_tool_call/unknown_tool"
    thought = json.loads(agent.requests[1].messages[-2].tool_calls[0].function.arguments)["thought"]
    assert "cancel_orders" in thought and "does not exist" in thought


async def test_a_draft_still_malformed_after_one_reask_goes_out_and_says_so():
    bad = {"order_id": 1001}
    agent = ScriptedModel([tool_call("cancel_order", bad), tool_call("cancel_order", bad), "unused"])
    async with asgi_client(app_for(agent)) as client:
        r = await client.post(URL, json={"model": "m", "messages": [{"role": "user", "content": "Cancel W1001"}],
                                         "tools": TOOLS})
    assert r.status_code == 200 and len(agent.requests) == 2
    assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] == json.dumps(bad)
    assert "still malformed_tool_call/schema_violation after a re-ask" in r.headers["x-rein-fail-open"]


async def test_policy_header_needs_the_operators_permission():
    agent = ScriptedModel(["ok"], cycle=True)
    async with asgi_client(app_for(agent, "passthrough")) as client:
        r = await client.post(URL, json={"model": "m", "messages": VAGUE}, headers={"x-rein-policy": "structural"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "policy_header_not_allowed"
    assert agent.requests == []
    async with asgi_client(app_for(agent, "passthrough", allow_header=True)) as client:
        r = await client.post(URL, json={"model": "m", "messages": VAGUE}, headers={"x-rein-policy": "structural"})
        assert r.headers["x-rein-policy"] == "structural"
        assert r.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"
        r = await client.post(URL, json={"model": "m", "messages": VAGUE}, headers={"x-rein-policy": "nope"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_policy"


BAD = "name: bad\ntaxonomy:\n  - {type: tool_failure, recovery_tool: page_the_oncall}\n"


def test_engine_refuses_an_invalid_policy(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    with pytest.raises(PolicyError, match=r"taxonomy\[0\]\.recovery_tool \(line 3\)"):
        Engine(ScriptedModel([]), str(path))


def test_serve_exits_2_on_an_invalid_policy(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    assert main(["serve", "--policy", str(path), "--upstream", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert "taxonomy[0].recovery_tool (line 3): names recovery tool 'page_the_oncall'" in err
    assert "Traceback" not in err


OOD = json.dumps({"error": "unsupported_request/out_of_domain", "evidence": "weather in Paris", "confidence": 0.9,
                  "plan": "decline"})
WEATHER = [{"role": "user", "content": "What's the weather in Paris? And where is W1001?"}]
LOOP = [*WEATHER, {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
    "name": "cancel_order", "arguments": '{"order_id": "W1001"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "pending"}'}]


def default_without_refiners():
    # Refiners share the rein model; off here so every rein call counted is inception's.
    policy = load_policy("default")
    return policy.model_copy(update={"refiners": policy.refiners.model_copy(update={"enabled": False})})


async def test_default_policy_diagnoses_a_user_turn_once_across_its_tool_loop():
    rein_model = ScriptedModel([OOD])  # a second call would raise and show up as x-rein-fail-open
    agent = ScriptedModel(["I can only help with orders; W1001 is pending."], cycle=True)
    app = create_app(Settings(policy="default"), Engine(agent, default_without_refiners(), rein_model=rein_model))
    async with asgi_client(app) as client:
        first = await client.post(URL, json={"model": "m", "messages": WEATHER, "tools": TOOLS})
        second = await client.post(URL, json={"model": "m", "messages": LOOP, "tools": TOOLS})
    assert len(rein_model.requests) == 1
    for r in (first, second):
        assert r.status_code == 200 and r.headers["x-rein-diagnosis"] == "unsupported_request/out_of_domain"
        assert "x-rein-fail-open" not in r.headers
    thought = json.loads(agent.requests[1].messages[-2].tool_calls[0].function.arguments)["thought"]
    assert "outside what you can help with" in thought


async def test_a_failing_rein_model_fails_open_and_says_so():
    rein_model = ScriptedModel([ModelError("rein model down", 502)])
    agent = ScriptedModel(["W1001 is pending."], cycle=True)
    app = create_app(Settings(policy="default"), Engine(agent, default_without_refiners(), rein_model=rein_model))
    async with asgi_client(app) as client:
        r = await client.post(URL, json={"model": "m", "messages": WEATHER, "tools": TOOLS})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "W1001 is pending."
    assert r.headers["x-rein-diagnosis"] == "none" and "llm: rein model down" in r.headers["x-rein-fail-open"]
    assert agent.requests[0].tools == TOOLS  # nothing was planted
