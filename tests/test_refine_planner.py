"""The planner's rules: which refiners a turn needs, decided without a model unless rules cannot tell."""
from __future__ import annotations

import json

from middleware.models import ScriptedModel
from policies.messages import parse_messages
from policies.schema import Budgets, RefinerSettings
from refiners import build
from refiners.base import NoRefinery, TurnContext
from refiners.refinery import AdaptiveRefinery
from policies.schema import Policy

ORDER = {"order_id": "A1234", "status": "shipped", "total": 42.5, "delivery_date": "2025-03-14"}


def ctx(user="Where is my order A1234?", tool=ORDER, history=(), profile=None) -> TurnContext:
    raw = list(history) + [{"role": "user", "content": user}]
    if tool is not None:
        raw += [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": json.dumps(tool)}]
    return TurnContext(messages=parse_messages(raw), profile=profile)


def refinery(llm=True, planner="rules", model=None, **budgets) -> AdaptiveRefinery:
    return AdaptiveRefinery(RefinerSettings(enabled=True, llm=llm, planner=planner), Budgets(**budgets),
                            model if model is not None else ScriptedModel([]))


async def test_clean_draft_with_tool_results_needs_nothing():
    r = refinery()
    plan = await r.plan(ctx(), "Your order A1234 has shipped and should arrive on March 14. The total was $42.50.")
    assert plan.refiners == [] and plan.model_calls == 0
    assert "factuality: skip" in plan.reason


async def test_contradicting_draft_plans_factuality_with_a_reason():
    plan = await refinery().plan(ctx(), "Your order A1234 was delivered; the total was $45.00.")
    assert plan.refiners == ["factuality"]
    assert "contradicts the evidence" in plan.reason and "$45.00" in plan.reason


async def test_tool_call_draft_and_acknowledgement_are_never_refined():
    r = refinery()
    assert (await r.plan(ctx(), "")).refiners == []  # a tool-call draft has no text
    thanks = ctx(user="Thanks, that's all!")
    plan = await r.plan(thanks, "You're welcome, have a nice day!")
    assert plan.refiners == [] and "acknowledgement" in plan.reason


def test_no_tool_results_no_facts_no_profile_lets_the_stream_pass():
    r = refinery()
    plain = ctx(user="Tell me a joke about cats.", tool=None)
    assert r.may_refine(plain) is False
    assert r.may_refine(ctx()) is True  # tool results: factuality may run
    assert r.may_refine(ctx(user="hi", tool=None, profile={"units": "metric"})) is True  # persona known


async def test_no_persona_known_means_no_persona_pass():
    draft = "Your order A1234 has shipped; it is 5 miles from the depot to you."
    plan = await refinery().plan(ctx(), draft)
    assert plan.refiners == [] and "persona: skip, no persona known" in plan.reason
    plan = await refinery().plan(ctx(profile={"units": "metric"}), draft)
    assert plan.refiners == ["persona"]


async def test_order_is_facts_then_thread_then_persona():
    history = [{"role": "user", "content": "How much is the refund?"},
               {"role": "assistant", "content": "Your refund for order A1234 of $30.00 will be issued on May 3."}]
    c = ctx(user="Ok. When will the refund arrive? Call me Dana.", history=history, tool=ORDER)
    plan = await refinery().plan(c, "Hi Dina, the refund for order A1234 of $35.00 should be there in 5 to 7 days; "
                                    "order A1243.")
    assert plan.refiners == ["factuality", "coherence", "persona"]


async def test_undecided_turn_asks_the_model_planner_once():
    model = ScriptedModel([json.dumps({"refiners": ["coherence"], "reason": "the question is only half answered"})])
    history = [{"role": "assistant", "content": "Order A1234 ships from Berlin."}]
    c = ctx(user="Can you tell me which carrier and warehouse handle it?", history=history)
    plan = await refinery(model=model).plan(c, "The warehouse team packs it on weekdays.")
    assert plan.refiners == ["coherence"] and plan.model_calls == 1
    assert "half answered" in plan.reason
    assert model.requests[0].response_format["type"] == "json_object"


async def test_malformed_planner_reply_leaves_the_rules_standing():
    model = ScriptedModel(["not json at all"])
    history = [{"role": "assistant", "content": "Order A1234 ships from Berlin."}]
    c = ctx(user="Can you tell me which carrier and warehouse handle it?", history=history)
    plan = await refinery(model=model).plan(c, "The warehouse team packs it on weekdays.")
    assert plan.refiners == [] and "rules stand" in plan.reason


async def test_without_the_model_only_deterministic_factuality_runs():
    r = refinery(llm=False)
    assert list(r.refiners) == ["factuality"]
    plan = await r.plan(ctx(profile={"units": "metric"}), "It is 5 miles away; total $45.00.")
    assert plan.refiners == ["factuality"] and plan.model_calls == 0


async def test_fixed_chain_runs_every_refiner_thoroughly():
    plan = await refinery(planner="fixed").plan(ctx(), "Your order A1234 has shipped.")
    assert plan.refiners == ["factuality", "coherence", "persona"] and plan.thorough  # the policy's order


def test_build_follows_the_policy():
    assert isinstance(build(Policy(name="p")), NoRefinery)
    assert isinstance(build(Policy(name="p", refiners={"enabled": True}), ScriptedModel([])), AdaptiveRefinery)


async def test_llm_planner_chooses_among_the_refiners_that_apply():
    model = ScriptedModel([json.dumps({"refiners": ["coherence", "persona"], "reason": "check the thread"})])
    plan = await refinery(planner="llm", model=model).plan(ctx(profile={"tone": "formal"}), "Your order A1234 has shipped.")
    assert plan.refiners == ["coherence"] and plan.model_calls == 1  # persona did not apply: not offered
    schema = model.requests[0].response_format["schema"]
    assert schema["properties"]["refiners"]["items"]["enum"] == ["coherence"]
