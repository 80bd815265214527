"""The same hold on every SDK surface: @rein.guard, rein.wrap_graph and the LangChain v1
middleware (where the held call never reaches the agent's tool node)."""
from __future__ import annotations

from typing import Annotated, TypedDict

from action_doubles import REASON, RULE, HoldCalls
from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage, AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from middleware import Rein
from middleware.adapters.lc_model import LangChainChatModel
from middleware.adapters.report import report_of
from middleware.models.testing import ScriptedModel, tool_call
from policies.loader import load_policy

ASK = [{"role": "user", "content": "Cancel reservation ABC123 please."}]
SORRY = "ABC123 cannot be cancelled: it was booked more than a day ago."
CANCEL_SPEC = {"type": "function", "function": {"name": "cancel_reservation", "parameters": {
    "type": "object", "properties": {"reservation_id": {"type": "string"}}}}}
cancelled: list[str] = []


@tool
def cancel_reservation(reservation_id: str) -> str:
    """Cancel a reservation."""
    cancelled.append(reservation_id)
    return f"{reservation_id} cancelled"


def holding(pipeline):
    pipeline.inception = HoldCalls(load_policy("structural"))
    return pipeline


def cancel(id_: str = "c1"):
    return tool_call("cancel_reservation", {"reservation_id": "ABC123"}, id=id_)


def saw_plan(request) -> bool:
    return any("Do not call cancel_reservation" in c.function.arguments
               for m in request.messages if m.role == "assistant" for c in m.tool_calls or [])


async def test_guard_reasks_the_function_and_returns_its_new_answer():
    rein = Rein(policy="structural")
    seen = []

    @rein.guard
    async def agent(messages, tools=None):
        seen.append(messages)
        planned = "Do not call cancel_reservation" in str(messages)
        return SORRY if planned else {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "cancel_reservation",
                                                          "arguments": '{"reservation_id": "ABC123"}'}}]}

    holding(agent.pipeline)
    reply = await agent(ASK, [CANCEL_SPEC])
    assert reply == SORRY and len(seen) == 2
    assert reply.rein.held_rules == [RULE] and reply.rein.dropped_calls == []


def test_guard_drops_the_call_past_the_rounds_and_says_so():
    rein = Rein(policy="structural")

    @rein.guard
    def agent(messages, tools=None):
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "cancel_reservation", "arguments": "{}"}}]}

    holding(agent.pipeline)
    reply = agent(ASK, [CANCEL_SPEC])
    assert reply.get("tool_calls") is None
    assert reply["content"] == f"I did not carry out cancel_reservation: {REASON}."
    assert reply.rein.rounds == 3 and [d.rule_id for d in reply.rein.dropped_calls] == [RULE]


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def graph_of(model: ScriptedModel):
    """A graph that hands its tool calls back to the caller (no tool node of its own)."""
    llm = LangChainChatModel(chat_model=model).bind_tools([cancel_reservation])

    async def call_model(state: State):
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    return g.compile()


async def test_wrapped_graph_is_reasked_instead_of_returning_the_held_call():
    model = ScriptedModel([cancel(), SORRY])
    guarded = Rein(policy="structural").wrap_graph(graph_of(model))
    holding(guarded.pipeline)
    out = await guarded.ainvoke({"messages": ASK})
    last = out["messages"][-1]
    assert isinstance(last, AIMessage) and last.content == SORRY and not last.tool_calls
    assert saw_plan(model.requests[1]) and report_of(out).held_rules == [RULE]


def test_langchain_middleware_checks_before_the_tool_runs():
    cancelled.clear()
    mw = Rein(policy="structural").middleware()
    holding(mw.pipeline)
    model = ScriptedModel([cancel(), SORRY])
    agent = create_agent(LangChainChatModel(chat_model=model), tools=[cancel_reservation], middleware=[mw])
    out = agent.invoke({"messages": ASK})
    assert cancelled == []  # the tool node never saw the held call
    assert out["messages"][-1].content == SORRY and saw_plan(model.requests[1])
    assert report_of(out["messages"][-1]).held_rules == [RULE]


def test_langchain_middleware_drops_a_call_the_model_insists_on():
    cancelled.clear()
    mw = Rein(policy="structural").middleware()
    holding(mw.pipeline)
    model = ScriptedModel([cancel("c1"), cancel("c2"), cancel("c3")])
    agent = create_agent(LangChainChatModel(chat_model=model), tools=[cancel_reservation], middleware=[mw])
    out = agent.invoke({"messages": ASK})
    assert cancelled == [] and len(model.requests) == 3
    last = out["messages"][-1]
    assert not last.tool_calls and last.content.endswith(f"I did not carry out cancel_reservation: {REASON}.")


class EditsCalls(AgentMiddleware):
    """Changes the model's tool call after rein checked it, as a human in the loop may."""

    def after_model(self, state, runtime):
        last = state["messages"][-1]
        if not last.tool_calls:
            return None
        calls = [{**c, "args": {"reservation_id": c["args"]["reservation_id"]}} for c in last.tool_calls]
        return {"messages": [last.model_copy(update={"tool_calls": calls})]}


def test_langchain_middleware_checks_a_call_changed_after_the_model_call_before_its_tool_runs():
    cancelled.clear()
    mw = Rein(policy="structural").middleware()
    holding(mw.pipeline)
    allowed = tool_call("cancel_reservation", {"reservation_id": "ABC123", "allowed": True}, id="c1")
    model = ScriptedModel([allowed, SORRY])
    agent = create_agent(LangChainChatModel(chat_model=model), tools=[cancel_reservation],
                         middleware=[mw, EditsCalls()])
    out = agent.invoke({"messages": ASK})
    assert cancelled == []  # passed as drafted, held as changed: the tool never ran
    refused = next(m for m in out["messages"] if isinstance(m, ToolMessage))
    assert refused.status == "error" and refused.content.startswith(f"Not carried out: cancel_reservation breaks {RULE}")
    assert REASON in refused.content and out["messages"][-1].content == SORRY


def test_langchain_middleware_lets_an_allowed_call_run():
    cancelled.clear()
    mw = Rein(policy="structural").middleware()
    holding(mw.pipeline)
    allowed = tool_call("cancel_reservation", {"reservation_id": "ABC123", "allowed": True}, id="c1")
    agent = create_agent(LangChainChatModel(chat_model=ScriptedModel([allowed, "Done."])),
                         tools=[cancel_reservation], middleware=[mw])
    out = agent.invoke({"messages": ASK})
    assert cancelled == ["ABC123"] and out["messages"][-1].content == "Done."


def graph_with_tools(model: ScriptedModel):
    """A graph whose own tool node runs the calls inside the run."""
    from langgraph.prebuilt import ToolNode, tools_condition

    llm = LangChainChatModel(chat_model=model).bind_tools([cancel_reservation])

    async def call_model(state: State):
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_node("tools", ToolNode([cancel_reservation]))
    g.add_edge(START, "model")
    g.add_conditional_edges("model", tools_condition)
    g.add_edge("tools", "model")
    return g.compile()


async def test_a_call_a_graph_ran_inside_its_run_is_reported_not_held():
    cancelled.clear()
    guarded = Rein(policy="structural").wrap_graph(graph_with_tools(ScriptedModel([cancel(), "Cancelled."])))
    holding(guarded.pipeline)
    out = await guarded.ainvoke({"messages": ASK})
    report = report_of(out)
    assert cancelled == ["ABC123"] and out["messages"][-1].content == "Cancelled."
    assert [d.rule_id for d in report.flagged_calls] == [RULE] and report.held_calls == []
    assert any("reported, not held" in n for n in report.notes)


CLOCK_PACK = """
name: clock
extends: structural
actions:
  now: [{header: x-rein-now}]
  records:
    order: {from: [{tool: get_order, key: args.order_id}], fields: {placed_at: datetime}}
  tools:
    cancel_order: {bind: {order: args.order_id}}
    get_order: {write: false}
  rules:
    - id: cancel_within_a_day
      tool: cancel_order
      condition: now - order.placed_at <= duration("24h")
      reason: An order can be cancelled within 24 hours of being placed.
"""
LOOKED_UP = [{"role": "user", "content": "Cancel order O-1 please."},
             {"role": "assistant", "content": None, "tool_calls": [
                 {"id": "g1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "O-1"}'}}]},
             {"role": "tool", "tool_call_id": "g1", "content": '{"order_id": "O-1", "placed_at": "2024-05-01T10:00:00"}'}]


def test_the_sdk_passes_the_dialogues_time_to_the_action_rules():
    from datetime import datetime, timezone

    from policies.loader import parse_policy

    def rein_with(replies):
        return Rein(policy=parse_policy(CLOCK_PACK), model=ScriptedModel(replies, cycle=True))

    in_time = rein_with([tool_call("cancel_order", {"order_id": "O-1"}, id="c1")])
    reply = in_time.complete(LOOKED_UP, now="2024-05-01T12:00:00")
    assert [c.function.name for c in reply.tool_calls] == ["cancel_order"]
    late = rein_with([tool_call("cancel_order", {"order_id": "O-1"}, id="c1")])
    reply = late.complete(LOOKED_UP, now=datetime(2024, 5, 3, tzinfo=timezone.utc))
    assert not reply.tool_calls
    assert reply.content.endswith("I did not carry out cancel_order: An order can be cancelled within 24 hours of being placed.")
    # without a time the rule cannot be judged: the call goes out (rein holds only on evidence)
    unknown = rein_with([tool_call("cancel_order", {"order_id": "O-1"}, id="c1")])
    assert [c.function.name for c in unknown.complete(LOOKED_UP).tool_calls] == ["cancel_order"]

    guarded_rein = rein_with([])
    seen = []

    @guarded_rein.guard
    def agent(messages, tools=None):
        seen.append(messages)
        return {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "cancel_order", "arguments": '{"order_id": "O-1"}'}}]}

    held = agent(LOOKED_UP, rein_now="2024-05-03T00:00:00")
    assert "within 24 hours" in str(held) and len(seen) == 3  # asked, then re-asked twice, then dropped


async def test_a_wrapped_graph_takes_the_dialogues_time_from_its_config():
    from policies.loader import parse_policy

    model = ScriptedModel([tool_call("cancel_order", {"order_id": "O-1"}, id="c1")], cycle=True)
    llm = LangChainChatModel(chat_model=model)

    async def call_model(state: State):
        return {"messages": [await llm.ainvoke(state["messages"])]}

    g = StateGraph(State)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    guarded = Rein(policy=parse_policy(CLOCK_PACK)).wrap_graph(g.compile())
    in_time = await guarded.ainvoke({"messages": LOOKED_UP}, {"configurable": {"rein_now": "2024-05-01T12:00:00"}})
    assert in_time["messages"][-1].tool_calls and len(model.requests) == 1
    late = await guarded.ainvoke({"messages": LOOKED_UP}, {"configurable": {"rein_now": "2024-05-03T12:00:00"}})
    assert not late["messages"][-1].tool_calls and "within 24 hours" in late["messages"][-1].content


def test_the_langchain_middleware_takes_the_dialogues_time_from_the_agents_context():
    from policies.loader import parse_policy

    ran: list[str] = []

    @tool
    def cancel_order(order_id: str) -> str:
        """Cancel an order."""
        ran.append(order_id)
        return f"{order_id} cancelled"

    def run(now: str, replies: list):
        mw = Rein(policy=parse_policy(CLOCK_PACK)).middleware()
        agent = create_agent(LangChainChatModel(chat_model=ScriptedModel(replies)), tools=[cancel_order], middleware=[mw])
        return agent.invoke({"messages": LOOKED_UP}, context={"rein_now": now})

    cancel_o1 = lambda i: tool_call("cancel_order", {"order_id": "O-1"}, id=f"c{i}")  # noqa: E731
    late = run("2024-05-03T12:00:00", [cancel_o1(1), cancel_o1(2), cancel_o1(3)])
    assert ran == [] and "within 24 hours" in late["messages"][-1].content
    run("2024-05-01T12:00:00", [cancel_o1(1), "Done."])
    assert ran == ["O-1"]
