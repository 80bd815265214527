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
