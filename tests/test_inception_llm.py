"""The LLM inception module, driven by scripted models: prompt, parsing, triggers, cache, fail-open."""
from __future__ import annotations

import json

import pytest

import inception
from inception.cache import LRU
from inception.llm import parse_reply
from middleware.models.testing import FunctionModel, ScriptedModel
from policies.loader import load_policy
from policies.messages import parse_messages
from policies.chat_model import ModelError
from tests.spans import recording

_exporter = recording()
TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look up an order.",
                                           "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]
WEATHER = [{"role": "system", "content": "You are Northwind's store agent."},
           {"role": "user", "content": "What's the weather in Paris tomorrow?"}]
OOD = {"error": "unsupported_request/out_of_domain", "evidence": "weather in Paris", "confidence": 0.9,
       "plan": "Say you only help with orders."}


def policy(**inception_settings):
    base = load_policy("default")
    return base.model_copy(update={"inception": base.inception.model_copy(update=inception_settings)})


def msgs(raw):
    return parse_messages(raw)


async def test_prompt_carries_context_tools_and_the_recovery_map():
    model = ScriptedModel([json.dumps(OOD)])
    d = await inception.build(policy(), model).diagnose(msgs(WEATHER), TOOLS)
    request = model.requests[0]
    system, asked = request.messages[0].content, request.messages[1].content
    for entry in load_policy("default").taxonomy:
        assert entry.label in system and entry.definition in system
    assert "Recovery tool: transfer_to_human" in system and "Recovery tool: ask_clarification" in system
    assert "get_order(order_id): Look up an order." in asked
    assert "[user] What's the weather in Paris tomorrow?" in asked and "[system] You are Northwind" in asked
    schema = request.response_format["json_schema"]["schema"]
    assert request.response_format["type"] == "json_schema"
    assert set(schema["properties"]["error"]["enum"]) == {"none"} | {e.label for e in load_policy("default").taxonomy}
    assert request.timeout == load_policy("default").budgets.model_timeout_s
    # The diagnosis: typed, quoted evidence, the pack's plan for that type.
    assert d.model_calls == 1 and d.header() == "unsupported_request/out_of_domain"
    err = d.errors[0]
    assert (err.source, err.evidence, err.confidence) == ("llm", "weather in Paris", 0.9)
    assert d.plan.startswith("The request is outside what you can help with here (weather in Paris)")


async def test_plan_from_model_uses_the_modules_own_plan():
    d = await inception.build(policy(plan_from="model"), ScriptedModel([json.dumps(OOD)])).diagnose(msgs(WEATHER), TOOLS)
    assert d.plan == "Say you only help with orders."


@pytest.mark.parametrize("reply", [
    "I think the user is asking about weather, which is out of domain.",   # prose, no JSON
    "",
    "{{{{",
])
async def test_a_reply_that_is_not_json_is_none_with_a_span_event(reply):
    _exporter.clear()
    d = await inception.build(policy(), ScriptedModel([reply])).diagnose(msgs(WEATHER), TOOLS)
    assert not d.found and d.plan is None and d.model_calls == 1
    assert d.notes == ["llm: reply is not JSON; treated as none"]
    span = next(s for s in _exporter.get_finished_spans() if s.name == "apply_guardrail inception_llm")
    assert [e.name for e in span.events] == ["rein.inception.fail_open"]
    assert span.attributes["gen_ai.security.decision.type"] == "allow"


async def test_a_cut_off_reply_with_no_quoted_evidence_is_none():
    d = await inception.build(policy(), ScriptedModel(['{"error": "out_of_domain", "evidence": '])).diagnose(
        msgs(WEATHER), TOOLS)
    assert not d.found and d.plan is None


async def test_robust_parsing_of_fenced_and_loose_replies():
    assert parse_reply('Sure!\n```json\n{"error": "tool_failure"}\n```') == {"error": "tool_failure"}
    assert parse_reply("error: polysemy") == {"error": "polysemy"}
    fenced = "```json\n" + json.dumps({**OOD, "error": "out_of_domain"}) + "\n```"  # bare subtype
    d = await inception.build(policy(), ScriptedModel([fenced])).diagnose(msgs(WEATHER), TOOLS)
    assert d.header() == "unsupported_request/out_of_domain"


async def test_unknown_type_ungrounded_evidence_and_low_confidence_are_dropped():
    unknown = json.dumps({**OOD, "error": "bad_vibes"})
    d = await inception.build(policy(), ScriptedModel([unknown])).diagnose(msgs(WEATHER), TOOLS)
    assert not d.found and "unknown error type 'bad_vibes'" in d.notes[0]
    ungrounded = json.dumps({**OOD, "evidence": "unsupported_request/out_of_domain", "confidence": 1.0})
    d = await inception.build(policy(), ScriptedModel([ungrounded])).diagnose(msgs(WEATHER), TOOLS)
    assert not d.found and d.notes == []
    unsure = json.dumps({**OOD, "confidence": 0.3})
    assert not (await inception.build(policy(), ScriptedModel([unsure])).diagnose(msgs(WEATHER), TOOLS)).found


async def test_model_timeout_fails_open():
    slow = ScriptedModel([json.dumps(OOD)], delay=0.5)
    p = policy()
    p = p.model_copy(update={"budgets": p.budgets.model_copy(update={"model_timeout_s": 0.05})})
    d = await inception.build(p, slow).diagnose(msgs(WEATHER), TOOLS)
    assert not d.found and d.notes == ["llm: over budget (0.05s)"] and d.model_calls == 1


async def test_model_error_fails_open_and_drops_response_format_after_a_400():
    model = ScriptedModel([ModelError("response_format is not supported", 400, "bad_request"), json.dumps(OOD)])
    cascade = inception.build(policy(trigger="always"), model)
    d = await cascade.diagnose(msgs(WEATHER), TOOLS)
    assert not d.found and d.notes == ["llm: response_format is not supported"]
    d = await cascade.diagnose(msgs(WEATHER), TOOLS)  # failures are not cached: asked again, in prose
    assert d.found and model.requests[1].response_format is None


async def test_on_signal_asks_only_when_a_signal_fires_and_structure_found_nothing():
    model = FunctionModel(lambda r: json.dumps({"error": "none", "evidence": "", "confidence": 0, "plan": ""}))
    cascade = inception.build(policy(trigger="on_signal"), model)
    await cascade.diagnose(msgs([{"role": "user", "content": "Where is order W1?"}]), TOOLS)
    assert model.requests == []
    await cascade.diagnose(msgs(WEATHER), TOOLS)  # 'weather' is an out_of_domain signal
    assert len(model.requests) == 1
    failing = [{"role": "user", "content": "What's the weather at the warehouse? Is W1 there?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "c", "content": '{"error": "down"}'}]
    d = await cascade.diagnose(msgs(failing), TOOLS)
    assert d.header() == "tool_failure" and len(model.requests) == 1


async def test_cache_prevents_rediagnosis_in_a_tool_loop():
    model = ScriptedModel([json.dumps(OOD)])  # one reply: a second call would fail the test
    cascade = inception.build(policy(trigger="every_user_turn"), model)
    first = await cascade.diagnose(msgs(WEATHER), TOOLS)
    loop = [*WEATHER, {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "W1"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "shipped"}'}]
    second = await cascade.diagnose(msgs(loop), TOOLS)
    assert len(model.requests) == 1 and first.model_calls == 1 and second.model_calls == 0
    assert second.header() == first.header() and second.plan == first.plan


async def test_always_rediagnoses_a_longer_request_and_budget_zero_never_asks():
    model = FunctionModel(lambda r: json.dumps(OOD))
    cascade = inception.build(policy(trigger="always"), model)
    await cascade.diagnose(msgs(WEATHER), TOOLS)
    await cascade.diagnose(msgs([*WEATHER, {"role": "assistant", "content": "hm"}]), TOOLS)
    assert len(model.requests) == 2
    p = policy(trigger="always")
    p = p.model_copy(update={"budgets": p.budgets.model_copy(update={"max_calls_per_turn": 0})})
    silent = FunctionModel(lambda r: json.dumps(OOD))
    assert (await inception.build(p, silent).diagnose(msgs(WEATHER), TOOLS)).model_calls == 0
    assert silent.requests == []


def test_cache_is_a_bounded_lru():
    cache: LRU[int] = LRU(2)
    cache.put("a", 1), cache.put("b", 2), cache.get("a"), cache.put("c", 3)
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == 1
    off: LRU[int] = LRU(0)
    off.put("a", 1)
    assert len(off) == 0


async def test_one_guardrail_span_per_detector_with_its_decision():
    _exporter.clear()
    failing = [{"role": "user", "content": "Where is W1?"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "c", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "W1"}'}}]},
               {"role": "tool", "tool_call_id": "c", "content": "Error: order service down"}]
    await inception.build(load_policy("structural")).diagnose(msgs(failing), TOOLS)
    decided = {s.name: s.attributes["gen_ai.security.decision.type"] for s in _exporter.get_finished_spans()}
    assert decided == {"apply_guardrail tool_failure": "warn", "apply_guardrail action_loop": "allow",
                       "apply_guardrail malformed_tool_call": "allow", "apply_guardrail vague_reference": "allow",
                       "apply_guardrail untrusted_instruction": "allow"}
    span = next(s for s in _exporter.get_finished_spans() if s.name == "apply_guardrail tool_failure")
    assert span.attributes["gen_ai.operation.name"] == "apply_guardrail"
    assert list(span.attributes["rein.detections"]) == ["tool_failure"]
