"""@rein.guard: rein's stages around a user's sync or async agent function."""
from __future__ import annotations

import asyncio

import pytest
from langchain_core.messages import AIMessage

from middleware import Rein
from middleware.adapters.report import ReinDict, ReinText, report_of
from middleware.models.testing import ScriptedModel
from sdk_doubles import PLAN, PlanOnToolError, Shout, install
from policies.messages import AssistantMessage

USER = [{"role": "user", "content": "Where is order A1?"}]
FAILED = USER + [
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"id": "A1"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: service unavailable"},
]
TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {"type": "object"}}}]


@pytest.fixture
def rein():
    # rein's own model is scripted: any stage that calls it gets an answer, and no network is used.
    return Rein(policy="default", rein_model=ScriptedModel(['{"error": "none"}'], cycle=True))


def test_sync_guard_returns_text_with_the_report(rein):
    seen = []

    @rein.guard
    def agent(messages, tools=None, *, tone="plain"):
        seen.append((messages, tools, tone))
        return f"{tone}: order A1 ships today"

    reply = agent(USER, TOOLS, tone="warm")
    assert isinstance(reply, ReinText) and reply == "warm: order A1 ships today"
    assert seen == [(USER, TOOLS, "warm")]  # OpenAI dicts in, extra arguments untouched
    assert reply.rein.policy == "default" and reply.rein.rounds == 1
    assert reply.rein.final.content == reply and not reply.rein.refined
    assert agent.__name__ == "agent"


async def test_async_guard_keeps_a_dict_reply_and_its_unknown_fields(rein):
    @rein.guard
    async def agent(messages):
        await asyncio.sleep(0)
        return {"role": "assistant", "content": "Hi!", "x_vendor": {"id": 7}}

    reply = await agent(USER)
    assert isinstance(reply, ReinDict)
    assert reply == {"role": "assistant", "content": "Hi!", "x_vendor": {"id": 7}}
    assert report_of(reply).diagnosis.header() == "none"


async def test_a_plan_reaches_the_function_and_the_diagnosis_shows_on_the_result(rein):
    seen = []

    @rein.guard
    async def agent(messages, tools=None):
        seen.append(messages)
        return "Sorry, the order service is down. Shall I retry?"

    install(agent.pipeline, inception=PlanOnToolError())
    reply = await agent(FAILED, tools=TOOLS)
    assert reply.rein.diagnosis.header() == "tool_error" and reply.rein.injected
    assert reply.rein.diagnosis.errors[0].evidence == "Error: service unavailable"
    assert seen[0][:3] == FAILED and seen[0][-1]["content"] == PLAN  # the plan, as a think trace


def test_refinement_revises_the_reply_in_the_functions_own_type(rein):
    @rein.guard
    def text_agent(messages):
        return "ships today"

    @rein.guard
    def message_agent(messages):
        return AssistantMessage(content="ships today")

    @rein.guard
    def langchain_agent(messages):
        return AIMessage("ships today", id="m1")

    for guarded in (text_agent, message_agent, langchain_agent):
        install(guarded.pipeline, refinery=Shout())
    text = text_agent(USER)
    assert text == "SHIPS TODAY" and isinstance(text, str)
    assert text.rein.refined and text.rein.draft.content == "ships today"
    assert [(s.name, s.feedback) for s in text.rein.steps] == [("shout", "too quiet")]
    message = message_agent(USER)
    assert isinstance(message, AssistantMessage) and message.content == "SHIPS TODAY"
    assert "rein" not in message.model_dump()  # the report never leaks into the wire form
    lc = langchain_agent(USER)
    assert isinstance(lc, AIMessage) and lc.content == "SHIPS TODAY" and lc.id == "m1"
    assert report_of(lc).refined


def test_a_failing_stage_fails_open_and_says_so(rein):
    @rein.guard
    def agent(messages):
        return "ships today"

    install(agent.pipeline, refinery=Shout(fail=True))
    reply = agent(USER)
    assert reply == "ships today"
    assert any("refine" in n and "refiner down" in n for n in reply.rein.notes)


def test_the_functions_own_errors_reach_the_caller(rein):
    @rein.guard
    def agent(messages):
        raise ValueError("agent broke")

    with pytest.raises(ValueError, match="agent broke"):
        agent(USER)


def test_rein_owned_recovery_tool_is_answered_inside_rein(rein):
    calls = []

    @rein.guard
    def agent(messages, tools=None):
        calls.append([t["function"]["name"] for t in tools or []])
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "r1", "type": "function", "function": {"name": "escalate", "arguments": "{}"}}]}

    inception = PlanOnToolError(owned={"escalate": "A human agent will contact you."})
    install(agent.pipeline, inception=inception)
    reply = agent(FAILED, TOOLS)
    assert calls == [["get_order", "escalate"]]  # the recovery tool was offered to the agent
    assert reply == {"role": "assistant", "content": "A human agent will contact you."}
    assert [c.function.name for c in inception.resolved] == ["escalate"]


async def test_sync_guard_called_from_async_code_and_concurrent_async_calls(rein):
    @rein.guard
    def sync_agent(messages):
        return messages[-1]["content"].upper()

    @rein.guard
    async def async_agent(messages):
        await asyncio.sleep(0.01)
        return messages[-1]["content"]

    assert sync_agent(USER) == "WHERE IS ORDER A1?"
    replies = await asyncio.gather(*(async_agent([{"role": "user", "content": str(i)}]) for i in range(5)))
    assert replies == [str(i) for i in range(5)]
    assert [r.rein.final.content for r in replies] == [str(i) for i in range(5)]


async def test_acomplete_runs_the_stages_around_the_configured_model():
    model = ScriptedModel(["Order A1 ships today."])
    rein = Rein(policy="default", model=model, rein_model=ScriptedModel(["x"], cycle=True))
    reply = await rein.acomplete(USER, TOOLS, temperature=0)
    assert reply.content == "Order A1 ships today." and reply.rein.final.content == reply.content
    assert model.requests[0].extra == {"temperature": 0} and model.requests[0].tools == TOOLS


def test_model_spec_string_serves_complete_from_sync_code_twice():
    from fake_upstream import ThreadedUpstream

    with ThreadedUpstream() as up:
        rein = Rein(policy="structural", model=up.base_url, rein_model=ScriptedModel([]))
        # Two sync calls: the fast path's connection pool must survive between them.
        first = rein.complete([{"role": "user", "content": "hello"}])
        second = rein.complete([{"role": "user", "content": "again"}])
    assert (first.content, second.content) == ("Echo: hello", "Echo: again")
    assert second.rein.final.content == "Echo: again" and second.rein.diagnosis.header() == "none"


def test_guard_takes_its_own_policy(rein):
    @rein.guard(policy="passthrough")
    def agent(messages):
        return "hi"

    install(agent.pipeline, refinery=Shout())  # passthrough never refines, even with a refinery
    reply = agent(USER)
    assert reply == "hi" and reply.rein.policy == "passthrough" and not reply.rein.refined
