"""Agents under test: an OpenAI-compatible endpoint (rein's own proxy, live on loopback), a Python
callable, a compiled LangGraph graph, the reference LangChain agent, and spec loading."""
from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
import types

import pytest
import uvicorn
from langchain_core.messages import AIMessage
from langgraph.graph import END, START, MessagesState, StateGraph

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, ModelError, tool_call
from middleware.proxy import create_app
from sim_tests.agents import (GraphAgent, ModelAgent, ReferenceAgent, ScriptedAgent, aclose, as_agent,
                              callable_agent, endpoint_agent, load_agent)
from sim_tests.arms import BareArm
from sim_tests.trial import CallPolicy, run_trial
from sim_tests.domains import get_domain
from sim_tests.suites import load_suite
from sim_tests.scorers import expected_db_hash
from sim_tests.users import ScriptedUser


def scenario(i: str):
    return next(s for n in ("retail", "travel") for s in load_suite(n).scenarios if s.id == i)


async def trial(agent, i="retail-cancel-kettle", calls=None):
    s = scenario(i)
    return await run_trial(s, BareArm(), agent, ScriptedUser(s), 0, calls or CallPolicy(timeout_s=10, retries=0),
                           expected_db_hash(s))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveProxy:
    """rein's proxy under a real uvicorn on loopback, on the test's event loop."""

    def __init__(self, upstream, policy="structural"):
        self.app = create_app(Settings(policy=policy), Engine(upstream, policy))
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port, lifespan="off",
                                                    log_level="warning"))
        self.url = f"http://127.0.0.1:{self.port}/v1"

    async def __aenter__(self):
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


async def test_endpoint_agent_through_the_rein_proxy_completes_a_task():
    upstream = ScriptedAgent().bind(get_domain("retail").environment())
    async with LiveProxy(upstream) as proxy:
        agent = endpoint_agent(proxy.url, timeout=10)
        try:
            record = await trial(agent)
        finally:
            await aclose(agent)
    assert record.status == "passed", record.scores
    calls = [m for m in record.messages if m.get("tool_calls")]
    assert calls[0]["tool_calls"][0]["function"]["name"] == "cancel_pending_order"
    assert any(m["role"] == "tool" and "cancelled" in m["content"] for m in record.messages)


async def test_endpoint_errors_and_timeouts_are_trial_errors_with_the_reason():
    def broken(request):
        raise ModelError("upstream is down", 502)

    async def slow(request):
        await asyncio.sleep(0.6)
        return "late"

    async with LiveProxy(FunctionModel(broken)) as proxy:
        agent = endpoint_agent(proxy.url, timeout=10)
        try:
            record = await trial(agent, calls=CallPolicy(timeout_s=5, retries=1, backoff_s=0.01))
        finally:
            await aclose(agent)
    assert record.status == "error" and record.ended_by == "error"
    assert "502" in record.error and "upstream is down" in record.error and record.scores == []
    async with LiveProxy(FunctionModel(slow)) as proxy:
        agent = endpoint_agent(proxy.url, timeout=10)
        try:
            record = await trial(agent, calls=CallPolicy(timeout_s=0.2, retries=0))
        finally:
            await aclose(agent)
    assert record.status == "error" and "timed out after 0.2s" in record.error


async def test_callable_agent_sync_function_with_tools():
    seen_tools = []

    def my_agent(messages, tools=None):
        seen_tools.append(len(tools or []))
        last = messages[-1]
        if last["role"] == "tool":
            return "Your order R1002 has been cancelled; 39.0 will be refunded."
        m = re.search(r"R\d{4}", last.get("content") or "")
        if m and "cancel" in last["content"].lower():
            return {"role": "assistant", "content": None, "tool_calls": [{
                "id": "c1", "type": "function", "function": {
                    "name": "cancel_pending_order",
                    "arguments": json.dumps({"order_id": m.group(0), "reason": "no_longer_needed"})}}]}
        return "Anything else?"

    record = await trial(callable_agent(my_agent))
    assert record.status == "passed", record.scores
    assert seen_tools[0] == len(get_domain("retail").tools)


async def test_graph_factory_runs_its_own_tools_against_the_trial_database():
    def make(tools):
        by_name = {t.name: t for t in tools}

        async def agent(state: MessagesState):
            text = state["messages"][-1].content
            m = re.search(r"R\d{4}", text)
            if m and "cancel" in text.lower():
                out = await by_name["cancel_pending_order"].ainvoke({"order_id": m.group(0), "reason": "no_longer_needed"})
                return {"messages": [AIMessage(content=f"Cancelled: {out}")]}
            return {"messages": [AIMessage(content="Anything else?")]}

        g = StateGraph(MessagesState)
        g.add_node("agent", agent)
        g.add_edge(START, "agent")
        g.add_edge("agent", END)
        return g.compile()

    record = await trial(GraphAgent(make, name="make_graph"))
    assert record.status == "passed", record.scores
    inner = [m for m in record.messages if m.get("inner")]
    assert inner[0]["tool_calls"][0]["function"]["name"] == "cancel_pending_order"
    assert "39.0" in inner[1]["content"]


async def test_compiled_graph_that_returns_tool_calls_has_them_run_by_the_harness():
    async def agent(state: MessagesState):
        last = state["messages"][-1]
        if last.type == "tool":
            return {"messages": [AIMessage(content="Done, it is cancelled. Refund 39.0.")]}
        return {"messages": [AIMessage(content="", tool_calls=[{
            "id": "t1", "name": "cancel_pending_order", "args": {"order_id": "R1002", "reason": "no_longer_needed"}}])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_edge(START, "agent")
    g.add_edge("agent", END)
    record = await trial(GraphAgent(g.compile()))
    assert record.status == "passed", record.scores


async def test_reference_agent_is_a_langchain_agent_over_any_model():
    def model(request):
        last = request.messages[-1]
        if last.role == "tool":
            return "Order R1002 has been cancelled; a refund of 39.0 is on its way."
        assert {t["function"]["name"] for t in request.tools} >= {"cancel_pending_order", "get_order_details"}
        return tool_call("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"})

    fn = FunctionModel(model)
    record = await trial(ReferenceAgent(fn, max_tokens=32))
    assert record.status == "passed", record.scores
    assert fn.requests[0].extra.get("max_tokens") == 32
    assert fn.requests[0].messages[0].role == "system" and "Kestrel Home" in fn.requests[0].messages[0].content
    assert [c.name for c in record.tool_calls] == ["cancel_pending_order"]


def test_load_agent_specs(monkeypatch):
    assert isinstance(load_agent("scripted"), ScriptedAgent)
    assert isinstance(load_agent("http://127.0.0.1:9/v1"), ModelAgent)
    mod = types.ModuleType("my_agents")
    mod.answer = lambda messages: "hi"
    mod.model = FunctionModel(lambda r: "hi")
    mod.make_graph = lambda tools: None
    monkeypatch.setitem(sys.modules, "my_agents", mod)
    assert isinstance(load_agent("my_agents:answer"), ModelAgent)
    assert load_agent("my_agents:model").model is mod.model
    assert isinstance(load_agent("my_agents:make_graph"), GraphAgent)
    with pytest.raises(ValueError, match="cannot load agent"):
        load_agent("my_agents:missing")
    with pytest.raises(ValueError, match="unknown agent"):
        load_agent("gpt-nothing")
    with pytest.raises(ValueError, match="not a ChatModel"):
        as_agent(42, "x")
