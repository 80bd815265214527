"""rein.wrap_graph on a real compiled LangGraph graph (model node + tool node)."""
from __future__ import annotations

from typing import Annotated, TypedDict

import pytest
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from middleware import Rein
from middleware.adapters.lc_model import LangChainChatModel
from middleware.models.testing import ScriptedModel, tool_call
from sdk_doubles import PLAN, PlanOnToolError, Shout, install


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    customer: str


@tool
def get_order(id: str) -> str:
    """Look an order up."""
    return f"order {id}: shipped"


def build(model: ScriptedModel):
    llm = LangChainChatModel(chat_model=model).bind_tools([get_order])

    async def call_model(state: State):
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode([get_order]))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    return g.compile()


def script():
    return ScriptedModel([tool_call("get_order", {"id": "A1"}, id="c1"), "Order A1 has shipped."])


@pytest.fixture
def rein():
    return Rein(policy="default", rein_model=ScriptedModel(["x"], cycle=True))


INPUT = {"messages": [{"role": "user", "content": "Where is A1?"}], "customer": "ada"}


async def test_wrapped_graph_returns_what_the_graph_returns(rein):
    direct = await build(script()).ainvoke(INPUT)
    out = await rein.wrap_graph(build(script())).ainvoke(INPUT)
    assert out.keys() == direct.keys() and out["customer"] == "ada"
    assert [type(m) for m in out["messages"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert [m.content for m in out["messages"]] == [m.content for m in direct["messages"]]
    assert out.rein.final.content == "Order A1 has shipped." and out.rein.diagnosis.header() == "none"


def test_sync_invoke_refines_the_last_reply_only(rein):
    guarded = rein.wrap_graph(build(script()))
    install(guarded.pipeline, refinery=Shout())
    out = guarded.invoke(INPUT)
    assert out["messages"][-1].content == "ORDER A1 HAS SHIPPED."
    assert out["messages"][2].content == "order A1: shipped"  # the tool result is the graph's own
    assert out.rein.refined and out.rein.draft.content == "Order A1 has shipped."


async def test_a_plan_reaches_the_graph_but_not_the_callers_output(rein):
    model = ScriptedModel(["Sorry, the lookup failed. Shall I retry?"])
    guarded = rein.wrap_graph(build(model))
    install(guarded.pipeline, inception=PlanOnToolError())
    failed = {"messages": [
        HumanMessage("Where is A1?"),
        AIMessage("", tool_calls=[{"name": "get_order", "args": {"id": "A1"}, "id": "c0", "type": "tool_call"}]),
        ToolMessage("Error: timeout", tool_call_id="c0")], "customer": "ada"}
    out = await guarded.ainvoke(failed)
    seen = model.requests[0].messages
    assert seen[-1].content == PLAN and len(seen) == 5  # dialogue + think call + plan
    assert [m.content for m in out["messages"]] == ["Where is A1?", "", "Error: timeout",
                                                     "Sorry, the lookup failed. Shall I retry?"]
    assert out.rein.diagnosis.header() == "tool_error" and out.rein.injected


async def test_bad_input_is_a_clear_error(rein):
    with pytest.raises(TypeError, match="messages"):
        await rein.wrap_graph(build(script())).ainvoke({"question": "hi"})


async def test_a_checkpointed_thread_is_diagnosed_with_its_history(rein):
    from langgraph.checkpoint.memory import InMemorySaver

    model = ScriptedModel([tool_call("get_order", {"id": "A1"}, id="c1"), "Shipped.", "You're welcome."])
    llm = LangChainChatModel(chat_model=model).bind_tools([get_order])

    async def call_model(state: State):
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode([get_order]))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    guarded = rein.wrap_graph(g.compile(checkpointer=InMemorySaver()))
    seen = []

    class Spy(PlanOnToolError):
        async def diagnose(self, messages, tools):
            seen.append([m.role for m in messages])
            return await super().diagnose(messages, tools)

    install(guarded.pipeline, inception=Spy())
    config = {"configurable": {"thread_id": "t1"}}
    await guarded.ainvoke({"messages": [{"role": "user", "content": "Where is A1?"}]}, config)
    out = await guarded.ainvoke({"messages": [{"role": "user", "content": "Thanks"}]}, config)
    assert seen[1] == ["user", "assistant", "tool", "assistant", "user"]  # the thread, not just the input
    assert [m.content for m in out["messages"]][-2:] == ["Thanks", "You're welcome."]
    assert len(out["messages"]) == 6 and len(model.requests[2].messages) == 5
