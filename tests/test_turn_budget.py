"""One budget per turn: what diagnosis spent is not the planner's to spend again, and the turn's
count of rein's own calls is that one object's."""
from __future__ import annotations

import json

import pytest

from middleware.engine import Engine
from middleware.models import FunctionModel, ScriptedModel
from middleware.state import rein_model_calls
from policies.budget import TurnBudget
from policies.chat_model import ModelRequest
from policies.messages import AssistantMessage, UserMessage
from policies.schema import Budgets, RefinerSettings
from refiners.base import TurnContext
from refiners.refinery import AdaptiveRefinery


def test_the_budget_counts_and_times_every_stage():
    b = TurnBudget(Budgets(max_calls_per_turn=3, model_timeout_s=2, refine_wall_s=9))
    b.spend(1)
    b.spend(-4)  # a stage that failed open spends nothing, never gives calls back
    assert (b.calls_used, b.calls_left()) == (1, 2)
    assert (b.stage_seconds("diagnose"), b.stage_seconds("refine")) == (6, 9)


async def test_a_planner_gets_only_what_the_turn_has_left():
    asked = []
    model = FunctionModel(lambda r: asked.append(r) or json.dumps({"refiners": ["coherence"], "reason": "x"}))
    refinery = AdaptiveRefinery(RefinerSettings(enabled=True, llm=True), Budgets(max_calls_per_turn=1), model)
    history = [UserMessage(content="Where does order A1234 ship from?"),
               AssistantMessage(content="Order A1234 ships from Berlin.")]
    ctx = lambda budget: TurnContext(messages=[*history, UserMessage(
        content="Can you tell me which carrier and warehouse handle it?")], budget=budget)
    spent = TurnBudget(Budgets(max_calls_per_turn=1), calls_used=1)  # diagnosis took the only call
    plan = await refinery.plan(ctx(spent), "It ships with the usual carrier.")
    assert plan.model_calls == 0 and not asked
    plan = await refinery.plan(ctx(TurnBudget(Budgets(max_calls_per_turn=1))), "It ships with the usual carrier.")
    assert plan.model_calls == 1 and len(asked) == 1


async def test_the_turns_count_of_rein_calls_is_the_budgets():
    judge = ScriptedModel([json.dumps({"error": "none"})], cycle=True)
    pipeline = Engine(ScriptedModel(["Fine."]), "default", rein_model=judge).pipeline()
    state = await pipeline.run(ModelRequest(messages=[UserMessage(content="actually, I changed my mind")]))
    assert state["budget"].calls_used == state["diagnosis"].model_calls == rein_model_calls(state) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_every_call_of_reins_own_model_is_charged_once_and_the_agents_never(stream):
    asked = []

    def judge(request):
        asked.append(request)
        return json.dumps({"error": "none", "refiners": ["coherence"], "reason": "x", "ok": True,
                           "feedback": "", "revision": ""})
    agent = ScriptedModel(["Order A1234 ships from Berlin with the usual carrier."])
    pipeline = Engine(agent, "default", rein_model=FunctionModel(judge)).pipeline()
    history = [UserMessage(content="Where does order A1234 ship from?"),
               AssistantMessage(content="Order A1234 ships from Berlin."),
               UserMessage(content="Actually, which carrier handles it?")]
    request = ModelRequest(messages=history)
    if stream:
        state = [payload async for kind, payload in pipeline.events(request) if kind == "state"][0]
    else:
        state = await pipeline.run(request)
    assert len(agent.requests) == 1 and len(asked) >= 1  # the agent answered; rein asked its model
    assert state["budget"].calls_used == len(asked) <= state["budget"].budgets.max_calls_per_turn
