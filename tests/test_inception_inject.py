"""Injection strategies produce exactly the intended messages; recovery tools are added only when
missing and answered inside rein."""
from __future__ import annotations

import json

import pytest

import inception
from inception.base import Detection, Diagnosis
from policies.loader import load_policy
from policies.messages import FunctionCall, ToolCall, dump_messages, parse_messages

PLAN = "Ask which order the user means."
CLIENT_TOOLS = [{"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}}]
DIALOGUE = [{"role": "system", "content": "You are a store agent."}, {"role": "user", "content": "cancel it"}]
DIAGNOSIS = Diagnosis(errors=[Detection(type="ambiguous_request", subtype="vague_reference", evidence="it")],
                      plan=PLAN, recovery_tools=["ask_clarification"])


def cascade(strategy="think_trace"):
    p = load_policy("structural")
    return inception.build(p.model_copy(update={"inception": p.inception.model_copy(update={"strategy": strategy})}))


def names(tools):
    return [t["function"]["name"] for t in tools]


def test_think_trace_appends_a_think_call_and_its_result():
    messages = parse_messages(DIALOGUE)
    out, tools = cascade().inject(messages, CLIENT_TOOLS, DIAGNOSIS)
    dumped = dump_messages(out)
    assert dumped[:2] == DIALOGUE and len(messages) == 2  # the system prompt untouched, input not mutated
    call_id = dumped[2]["tool_calls"][0]["id"]
    assert dumped[2:] == [
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {
            "name": "think", "arguments": json.dumps({"thought": PLAN})}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "Noted."}]
    assert call_id.startswith("rein_think_")
    assert names(tools) == ["cancel_order", "think", "ask_clarification"] and tools[0] is CLIENT_TOOLS[0]
    assert names(CLIENT_TOOLS) == ["cancel_order"]


def test_prefill_appends_an_assistant_prefix_and_no_think_tool():
    out, tools = cascade("prefill").inject(parse_messages(DIALOGUE), CLIENT_TOOLS, DIAGNOSIS)
    assert dump_messages(out) == [*DIALOGUE, {"role": "assistant", "content": f"(Thinking before I answer: {PLAN})\n\n"}]
    assert names(tools) == ["cancel_order", "ask_clarification"]


def test_system_note_changes_the_system_prompt_only():
    out, tools = cascade("system_note").inject(parse_messages(DIALOGUE), CLIENT_TOOLS, DIAGNOSIS)
    assert dump_messages(out) == [
        {"role": "system", "content": f"You are a store agent.\n\nRecovery note (from rein): {PLAN}"}, DIALOGUE[1]]
    out, _ = cascade("system_note").inject(parse_messages(DIALOGUE[1:]), None, DIAGNOSIS)
    assert dump_messages(out) == [{"role": "system", "content": f"Recovery note (from rein): {PLAN}"}, DIALOGUE[1]]


def test_recovery_tools_are_added_only_when_the_client_lacks_them():
    own = {"type": "function", "function": {"name": "ask_clarification", "description": "the client's own",
                                            "parameters": {"type": "object"}}}
    c = cascade()
    _, tools = c.inject(parse_messages(DIALOGUE), [*CLIENT_TOOLS, own], DIAGNOSIS)
    assert names(tools) == ["cancel_order", "ask_clarification", "think"] and tools[1] is own
    assert "ask_clarification" not in c.owned_tools([*CLIENT_TOOLS, own])
    assert c.owned_tools(CLIENT_TOOLS) == {"think", "ask_clarification", "transfer_to_human", "report_internal_error"}


def test_no_plan_and_no_tools_change_nothing():
    messages = parse_messages(DIALOGUE)
    out, tools = cascade().inject(messages, CLIENT_TOOLS, Diagnosis())
    assert out is messages and tools is CLIENT_TOOLS


def call(name, args):
    return ToolCall(id="c1", type="function", function=FunctionCall(name=name, arguments=json.dumps(args)))


async def test_rein_owned_tools_are_resolved_as_the_policy_says():
    c = cascade()
    think = await c.resolve(call("think", {"thought": "hm"}))
    assert not think.end_turn and think.tool_result == "Noted."
    ask = await c.resolve(call("ask_clarification", {"question": "Which order, W1 or W2?"}))
    assert ask.end_turn and ask.reply == "Which order, W1 or W2?"
    human = await c.resolve(call("transfer_to_human", {"summary": "wants a refund to bitcoin"}))
    assert human.end_turn and human.reply.endswith("They will see this summary: wants a refund to bitcoin")
    missing = await c.resolve(call("report_internal_error", {}))  # a missing argument leaves no hole
    assert "()" not in missing.reply and "something went wrong on our side" in missing.reply
    with pytest.raises(KeyError):
        await c.resolve(call("cancel_order", {}))


async def test_a_continue_tool_returns_its_reply_as_the_tool_result():
    p = load_policy("structural")
    tools = [t.model_copy(update={"on_call": "continue", "reply": "logged: {summary}"}) if t.name == "report_internal_error"
             else t for t in p.recovery_tools]
    c = inception.build(p.model_copy(update={"recovery_tools": tools}))
    r = await c.resolve(call("report_internal_error", {"summary": "db down"}))
    assert not r.end_turn and r.tool_result == "logged: db down"
