"""ReinMiddleware inside a real create_agent loop with a scripted model and a real tool."""
from __future__ import annotations

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.tools import tool

from middleware import Rein
from middleware.adapters.agent_middleware import ReinMiddleware
from middleware.adapters.lc_model import LangChainChatModel
from middleware.adapters.report import ReinReport, report_of
from middleware.models.testing import ScriptedModel, tool_call
from policies.schema import Policy, RecoveryTool
from sdk_doubles import PLAN, PlanOnToolError, Shout, install

lookups: list[str] = []


@tool
def get_order(id: str) -> str:
    """Look an order up."""
    lookups.append(id)
    return "Error: service unavailable" if id == "BAD" else f"order {id}: shipped"


def agent_with(model: ScriptedModel, mw: ReinMiddleware):
    return create_agent(LangChainChatModel(chat_model=model), tools=[get_order], middleware=[mw],
                        system_prompt="You help with orders.")


@pytest.fixture
def rein():
    return Rein(policy="default", rein_model=ScriptedModel(["x"], cycle=True))


def test_tool_round_trip_through_a_real_tool_and_a_refined_final_reply(rein):
    lookups.clear()
    mw = rein.middleware()
    install(mw.pipeline, refinery=Shout())
    model = ScriptedModel([tool_call("get_order", {"id": "A1"}, id="c1"), "Order A1 has shipped."])
    out = agent_with(model, mw).invoke({"messages": [{"role": "user", "content": "Where is A1?"}]})
    assert lookups == ["A1"]
    assert [type(m) for m in out["messages"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert out["messages"][1].tool_calls[0]["args"] == {"id": "A1"}  # a tool-call draft is never refined
    assert out["messages"][-1].content == "ORDER A1 HAS SHIPPED."
    report = report_of(out["messages"][-1])
    assert report.refined and report.draft.content == "Order A1 has shipped."
    # The same report rides in response_metadata, so it survives a checkpoint as plain JSON.
    stored = ReinReport.model_validate(out["messages"][-1].response_metadata["rein"])
    assert stored.refined and [s.name for s in stored.steps] == ["shout"]
    second = model.requests[1]
    assert [m.role for m in second.messages] == ["system", "user", "assistant", "tool"]
    assert second.messages[0].content == "You help with orders."
    assert [t["function"]["name"] for t in second.tools] == ["get_order"]


async def test_async_loop_diagnoses_a_failing_tool_and_injects_the_plan(rein):
    mw = rein.middleware()
    install(mw.pipeline, inception=PlanOnToolError())
    model = ScriptedModel([tool_call("get_order", {"id": "BAD"}), "Sorry, the service is down."])
    out = await agent_with(model, mw).ainvoke({"messages": [{"role": "user", "content": "Where is BAD?"}]})
    assert report_of(out["messages"][1]).diagnosis.header() == "none"
    final = report_of(out["messages"][-1])
    assert final.diagnosis.header() == "tool_error" and final.injected
    assert model.requests[1].messages[-1].content == PLAN  # the model saw the plan ...
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == ["Error: service unavailable"]
    assert out["messages"][-1].content == "Sorry, the service is down."  # ... the state did not keep it


async def test_recovery_tools_are_registered_and_resolved_inside_rein():
    policy = Policy(name="recovering", recovery_tools=[RecoveryTool(
        name="escalate", description="Hand over to a human.", reply="A human will call you.")])
    mw = Rein(policy=policy, rein_model=ScriptedModel(["x"], cycle=True)).middleware()
    assert [t.name for t in mw.tools] == ["think", "escalate"]
    inception = PlanOnToolError(owned={"escalate": "A human will call you."})
    install(mw.pipeline, inception=inception)
    model = ScriptedModel([tool_call("get_order", {"id": "BAD"}), tool_call("escalate", {})])
    out = await agent_with(model, mw).ainvoke({"messages": [{"role": "user", "content": "Where is BAD?"}]})
    assert [t["function"]["name"] for t in model.requests[0].tools] == ["get_order"]  # offered only on a plan
    assert [t["function"]["name"] for t in model.requests[1].tools] == ["get_order", "escalate"]
    assert out["messages"][-1].content == "A human will call you."
    assert [c.function.name for c in inception.resolved] == ["escalate"]
    assert not any(isinstance(m, ToolMessage) and m.name == "escalate" for m in out["messages"])


async def test_streaming_still_reaches_the_caller(rein):
    model = ScriptedModel([tool_call("get_order", {"id": "A1"}), "Order A1 has shipped."])
    agent = agent_with(model, rein.middleware())
    text = []
    async for piece, _ in agent.astream({"messages": [{"role": "user", "content": "A1?"}]}, stream_mode="messages"):
        if isinstance(piece, AIMessageChunk):
            text.append(piece.content)
    assert "".join(text) == "Order A1 has shipped."


def test_a_failing_stage_fails_open(rein):
    mw = rein.middleware()
    install(mw.pipeline, refinery=Shout(fail=True))
    out = agent_with(ScriptedModel(["Hello."]), mw).invoke({"messages": [{"role": "user", "content": "hi"}]})
    assert out["messages"][-1].content == "Hello."
    assert any("refiner down" in n for n in report_of(out["messages"][-1]).notes)
