"""The SDK with the real inception stage (the `structural` policy: rein makes no model call)."""
from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool

from middleware import Rein
from middleware.adapters.agent_middleware import ReinMiddleware
from middleware.adapters.lc_model import LangChainChatModel
from middleware.adapters.report import report_of
from middleware.models.testing import ScriptedModel, tool_call

FAILED = [
    {"role": "user", "content": "Where is order A1?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"id": "A1"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: service unavailable (503)"},
]
TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}}]


def rein() -> Rein:
    # A rein model that would fail if called: the structural policy must not need it.
    return Rein(policy="structural", rein_model=ScriptedModel([]))


def test_guard_result_shows_the_diagnosis_of_a_failing_tool_result():
    seen = []

    @rein().guard
    def agent(messages, tools=None):
        seen.append(messages)
        return "Sorry, I could not look the order up just now."

    reply = agent(FAILED, TOOLS)
    assert reply == "Sorry, I could not look the order up just now."
    assert reply.rein.diagnosis.found and "get_order" in reply.rein.diagnosis.errors[0].evidence
    assert reply.rein.injected and reply.rein.diagnosis.plan
    assert len(seen[0]) > len(FAILED)  # the agent saw the plan as an extra (think) exchange
    assert not reply.rein.notes


def test_guard_on_a_clean_dialogue_diagnoses_nothing():
    @rein().guard
    def agent(messages):
        return "Hello!"

    reply = agent([{"role": "user", "content": "hi"}])
    assert reply.rein.diagnosis.header() == "none" and not reply.rein.injected


@tool
def get_order(id: str) -> str:
    """Look an order up."""
    return "Error: service unavailable (503)"


async def test_agent_middleware_diagnoses_the_failing_tool_and_resolves_the_recovery_tool():
    model = ScriptedModel([tool_call("get_order", {"id": "A1"}),
                           tool_call("report_internal_error", {"summary": "order lookup down"})])
    middleware = ReinMiddleware(policy="structural")  # no Rein needed; rein makes no model call here
    agent = create_agent(LangChainChatModel(chat_model=model), tools=[get_order], middleware=[middleware])
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "Where is order A1?"}]})
    offered = [t["function"]["name"] for t in model.requests[1].tools]
    assert "report_internal_error" in offered and "report_internal_error" not in [
        t["function"]["name"] for t in model.requests[0].tools]
    final = out["messages"][-1]
    assert "order lookup down" in final.content and not final.tool_calls  # answered inside rein
    assert report_of(final).diagnosis.found
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)] == ["Error: service unavailable (503)"]


async def test_structured_output_through_the_middleware_is_not_an_unknown_tool():
    from langchain.agents.structured_output import ToolStrategy
    from pydantic import BaseModel

    class OrderStatus(BaseModel):
        id: str
        status: str

    model = ScriptedModel([tool_call("OrderStatus", {"id": "A1", "status": "shipped"})])
    agent = create_agent(LangChainChatModel(chat_model=model), tools=[get_order],
                         middleware=[rein().middleware()], response_format=ToolStrategy(OrderStatus))
    out = await agent.ainvoke({"messages": [{"role": "user", "content": "Status of A1?"}]})
    assert out["structured_response"] == OrderStatus(id="A1", status="shipped")
    assert len(model.requests) == 1  # no re-ask about an "unknown" tool
    assert [t["function"]["name"] for t in model.requests[0].tools] == ["get_order", "OrderStatus"]


def test_a_function_that_keeps_its_tools_to_itself_is_not_re_asked():
    calls = []

    @rein().guard
    def agent(messages):
        calls.append(messages)
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c2", "type": "function", "function": {"name": "get_order", "arguments": '{"id": "B2"}'}}]}

    reply = agent([{"role": "user", "content": "And order B2?"}])
    assert len(calls) == 1 and reply["tool_calls"][0]["function"]["name"] == "get_order"
    assert reply.rein.diagnosis.header() == "none" and not reply.rein.notes
