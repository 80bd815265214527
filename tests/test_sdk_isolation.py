"""rein's own pipeline stays apart from the LangGraph run around it, but not from its trace."""
from __future__ import annotations

from langchain.agents import create_agent
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry import trace

from middleware import Rein
from middleware.adapters.lc_model import LangChainChatModel
from middleware.models.testing import ScriptedModel
from tests.spans import recording

_exporter = recording()


async def test_pipeline_is_not_a_subgraph_of_the_agent_run():
    rein = Rein(policy="structural", rein_model=ScriptedModel([]))
    saver = InMemorySaver()
    agent = create_agent(LangChainChatModel(chat_model=ScriptedModel(["one", "two"])), tools=[],
                         middleware=[rein.middleware()], checkpointer=saver)
    config = {"configurable": {"thread_id": "t1"}}
    await agent.ainvoke({"messages": [{"role": "user", "content": "a"}]}, config)
    updates = [u async for u in agent.astream({"messages": [{"role": "user", "content": "b"}]}, config,
                                              stream_mode="updates", subgraphs=True)]
    assert all(namespace == () for namespace, _ in updates)  # rein's nodes never show up as a subgraph
    assert not any("diagnose" in update for _, update in updates)
    assert {c.config["configurable"]["checkpoint_ns"] for c in saver.list(None)} == {""}
    state = await agent.aget_state(config)
    assert [m.content for m in state.values["messages"]] == ["a", "one", "b", "two"]


def test_rein_spans_are_children_of_the_callers_span():
    rein = Rein(policy="structural", rein_model=ScriptedModel([]))

    @rein.guard
    def support_agent(messages):
        return "hello"

    _exporter.clear()
    with trace.get_tracer("app").start_as_current_span("handle request") as parent:
        support_agent([{"role": "user", "content": "hi"}])
    spans = _exporter.get_finished_spans()
    agent_span = next(s for s in spans if s.name == "chat support_agent")
    assert agent_span.context.trace_id == parent.get_span_context().trace_id
    assert agent_span.attributes["gen_ai.operation.name"] == "chat"
