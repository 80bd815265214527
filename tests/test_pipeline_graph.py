"""The graph is what its docstring says: the nodes and edges drawn in middleware/pipeline/graph.py
are the compiled graph's, and no router names a stage that is not a node."""
from __future__ import annotations

import pytest

from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.pipeline.graph import on_loop

DRAWN = {("__start__", "diagnose"), ("diagnose", "incept"), ("diagnose", "agent"), ("incept", "agent"),
         ("agent", "check_actions"), ("check_actions", "recheck"), ("recheck", "agent"),
         ("check_actions", "resolve"), ("resolve", "agent"), ("resolve", "respond"),
         ("check_actions", "plan_refine"), ("plan_refine", "refine"), ("plan_refine", "respond"),
         ("refine", "respond"), ("check_actions", "respond"), ("respond", "__end__"),
         # the clean path hands a turn over at the stage that has work
         ("__start__", "incept"), ("__start__", "resolve"), ("__start__", "recheck"), ("__start__", "refine")}


def test_the_compiled_graph_is_the_one_drawn():
    graph = Engine(ScriptedModel(["x"]), "default").pipeline().graph.get_graph()
    assert {(e.source, e.target) for e in graph.edges} == DRAWN
    assert "plan_refine" in graph.nodes  # a stage is a node: none runs inside another


async def test_a_router_naming_a_stage_that_is_not_a_node_is_caught():
    def after_draft(p, state):
        return "plan_refine"
    with pytest.raises(AssertionError, match="plan_refine"):
        await on_loop(after_draft, ("resolve", "recheck"))({})


def test_a_turn_handed_over_starts_at_its_stage_with_the_same_stages_and_edges():
    """The clean path's hand-over enters a graph whose START goes straight to the stage (no routing
    step); the rest of it is the graph drawn above (what the stage can reach of it)."""
    turn_graph = Engine(ScriptedModel(["x"]), "default").pipeline().graph
    for stage in ("incept", "resolve", "recheck", "refine"):
        edges = {(e.source, e.target) for e in turn_graph.at({"resume": stage}).get_graph().edges}
        assert {(s, t) for s, t in edges if s == "__start__"} == {("__start__", stage)}
        assert edges - {("__start__", stage)} <= DRAWN | {("respond", "__end__")}
        assert ("respond", "__end__") in edges
    assert turn_graph.at({}) is turn_graph.whole and turn_graph.at({"resume": "incept"}) is turn_graph.at({"resume": "incept"})


async def test_a_turn_through_the_graph_waits_on_the_loop_about_five_passes_a_stage():
    """LangGraph runs each node in a task of its own and ends it in a shielded task (without eager
    tasks: five loop passes a node, bench/load_graph.py); rein adds no more: its routers run in the
    node, and the walk reads the graph's updates, its chunks going through its own writer."""
    import asyncio

    from policies.chat_model import ModelRequest
    from policies.messages import parse_messages

    failed = [{"role": "user", "content": "Where is my order A1?"},
              {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                  "name": "get_order", "arguments": '{"order_id": "A1"}'}}]},
              {"role": "tool", "tool_call_id": "c1", "content": '{"status": 500, "message": "inventory unavailable"}'}]
    pipeline = Engine(ScriptedModel(["Sorry, it is not available now."], cycle=True), "structural").pipeline()
    request = ModelRequest(messages=parse_messages(failed), model="m")
    for streamed in (False, True):
        walk = pipeline.run(request) if not streamed else _drain(pipeline.events(request))
        task = asyncio.ensure_future(walk)
        passes = 0
        while not task.done():
            passes += 1
            await asyncio.sleep(0)
        state = task.result()
        # Not streamed: incept, agent, check_actions, plan_refine, respond, 31 passes (before: 51, with
        # async routers, LangGraph's "values" stream mode and a routing step at START). Streamed: the
        # sentences checked as they stream, no plan_refine; 32 passes with the agent's stream and the
        # walk's task (before: 63, with LangGraph's "custom" stream mode).
        assert state["resume"] == "incept" and (streamed or state["plan"] is not None)
        assert passes <= 5 * 5 + 8, passes


async def _drain(events):
    async for kind, item in events:
        if kind == "state":
            return item
