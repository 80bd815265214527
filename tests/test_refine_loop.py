"""Each refiner revising and leaving alone; order and hand-over; budgets and fail-open; bad replies."""
from __future__ import annotations

import json

import pytest
from opentelemetry import trace

from middleware.models import FunctionModel, ScriptedModel
from policies.messages import parse_messages
from policies.schema import Budgets, RefinerSettings
from refiners.base import RefinePlan, TurnContext
from refiners.refinery import AdaptiveRefinery
from tests.spans import recording

ORDER = {"order_id": "A1234", "status": "shipped", "total": 42.5, "delivery_date": "2025-03-14"}
_exporter = recording()


def ctx(user="Where is my order A1234?", tool=ORDER, history=(), profile=None) -> TurnContext:
    raw = list(history) + [{"role": "user", "content": user}]
    if tool is not None:
        raw += [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": json.dumps(tool)}]
    return TurnContext(messages=parse_messages(raw), profile=profile)


def review(ok=False, feedback="fixed", revision=""):
    return json.dumps({"ok": ok, "feedback": feedback, "revision": revision})


def refinery(model=None, planner="rules", **budgets) -> AdaptiveRefinery:
    return AdaptiveRefinery(RefinerSettings(enabled=True, llm=True, planner=planner), Budgets(**budgets),
                            model if model is not None else ScriptedModel([]))


async def run(r, c, draft):
    return await r.refine(c, draft, await r.plan(c, draft))


async def test_factuality_fixes_values_against_the_tool_result_without_a_model():
    model = ScriptedModel([])
    out = await run(refinery(model), ctx(), "Your order A1243 was delivered. It should arrive on March 15 "
                                             "and the total was $45.00.")
    assert out.final == "Your order A1234 was shipped. It should arrive on March 14 and the total was $42.50."
    assert out.steps[0].name == "factuality" and out.steps[0].changed and "A1243 → A1234" in out.steps[0].feedback
    assert out.model_calls == 0 and model.requests == [] and out.header() == "factuality"


async def test_factuality_leaves_a_supported_draft_alone():
    draft = "Your order A1234 has shipped and should arrive on 2025-03-14; total $42.50."
    out = await run(refinery(), ctx(), draft)
    assert out.final == draft and out.steps == [] and out.header() == "none"


async def test_factuality_leaves_claims_nothing_settles_to_the_rules_and_asks_the_model_only_when_thorough():
    c = ctx(tool={"order_id": "A1234", "status": "shipped"})
    draft = "Order A1234 has shipped; your coupon SAVE10X expires on June 30."
    untouched = ScriptedModel([])
    out = await run(refinery(untouched), c, draft)  # an unverifiable claim is not a contradiction
    assert out.final == draft and untouched.requests == []

    def chain(model):
        return AdaptiveRefinery(RefinerSettings(enabled=True, llm=True, planner="fixed", refiners=["factuality"]),
                                Budgets(), model)

    ok_model = ScriptedModel([review(revision="Order A1234 has shipped.")])
    out = await run(chain(ok_model), c, draft)
    assert out.final == "Order A1234 has shipped." and out.model_calls == 1
    inventing = ScriptedModel([review(revision="Order A1234 has shipped; coupon SAVE10X expires on July 31.")])
    out = await run(chain(inventing), c, draft)
    assert out.final == draft and "nothing supports" in out.steps[0].feedback


async def test_persona_converts_units_and_fixes_the_name_without_a_model():
    c = ctx(profile={"name": "Dana", "units": "metric"})
    out = await run(refinery(), c, "Hi Daniel, order A1234 has shipped from our depot 10 miles away.")
    assert out.final == "Hi Dana, order A1234 has shipped from our depot 16.1 km away."
    assert out.header() == "persona" and out.model_calls == 0


async def test_persona_asks_the_model_for_a_constraint_and_leaves_alone_what_it_does_not_touch():
    c = ctx(user="Any restaurant near the hotel?", tool=None, profile={"constraints": ["vegetarian"]})
    model = ScriptedModel([review(revision="Try Green Leaf, a vegetarian place next door.")])
    out = await run(refinery(model), c, "Try Steak House Bruno next door, their steak is great.")
    assert out.final == "Try Green Leaf, a vegetarian place next door."
    assert "steak" in model.requests[0].messages[1].content.lower()
    untouched = await run(refinery(ScriptedModel([])), c, "The hotel has a pool and a gym.")
    assert untouched.final == "The hotel has a pool and a gym." and untouched.model_calls == 0


async def test_coherence_flags_a_value_said_earlier_for_the_same_record_and_asks_the_model():
    history = [{"role": "user", "content": "What's my refund?"},
               {"role": "assistant", "content": "Your refund for order A1234 is $30.00, issued on May 3."}]
    c = ctx(user="Great. And when will it be issued?", history=history)
    draft = "The refund for order A1234 of $35.00 is on its way."
    alone = await run(refinery(ScriptedModel([])), c, draft)  # no usable model: reported, not rewritten
    assert alone.final == draft and alone.flags == ["contradicts an earlier turn: $35.00 (earlier $30.00 for A1234)"]
    model = ScriptedModel([review(revision="The refund for order A1234 of $30.00 is issued on May 3.")])
    out = await run(refinery(model), c, draft)
    assert out.final == "The refund for order A1234 of $30.00 is issued on May 3." and out.header() == "coherence"
    assert "$35.00 (earlier $30.00" in model.requests[0].messages[1].content


async def test_coherence_restores_an_id_the_reply_garbles():
    history = [{"role": "user", "content": "I want to complain about a late delivery."},
               {"role": "assistant", "content": "I've opened case CS-20418 for you."}]
    c = ctx(user="What was my case number?", history=history, tool=None)
    out = await run(refinery(ScriptedModel([])), c, "Your case number is CS-24018.")
    assert out.final == "Your case number is CS-20418." and out.model_calls == 0


async def test_coherence_leaves_values_that_move_on_across_a_dialogue():
    history = [{"role": "assistant", "content": "Option 1 for order A1234 costs $299."}]
    c = ctx(user="And with insurance?", history=history, tool=None)
    for draft in ("With insurance the total for order A1234 is $329.", "Option 2 costs $375."):
        assert (await run(refinery(ScriptedModel([])), c, draft)).final == draft


async def test_coherence_accepts_a_value_the_draft_says_has_changed():
    history = [{"role": "assistant", "content": "Your refund of $30.00 will be issued on May 3."}]
    c = ctx(user="I returned the charger too. Thanks!", history=history, tool=None)
    draft = "Done: your updated refund is $45.00, issued on May 3."
    assert (await run(refinery(), c, draft)).final == draft


async def test_refiners_run_in_order_each_on_the_previous_revision():
    seen: list[str] = []

    def fn(request):
        seen.append(request.messages[1].content)
        return review(revision="Bonjour Dana, votre commande A1234 est expédiée, total $42.50.")

    history = [{"role": "assistant", "content": "Your order A1234 total is $42.50."}]
    c = ctx(user="Where is my order A1234?", history=history, profile={"name": "Dana", "language": "French"})
    out = await run(refinery(FunctionModel(fn)), c, "Hi Dan, your order A1234 is pending, total $45.00.")
    assert [s.name for s in out.steps] == ["factuality", "coherence", "persona"]
    assert out.steps[1].changed is False  # factuality already restored the total coherence flagged
    assert "Hi Dana, your order A1234 is shipped, total $42.50." in seen[0]  # persona got factuality's revision
    assert out.final.startswith("Bonjour Dana") and out.header() == "factuality,persona"


async def test_model_call_budget_keeps_the_best_revision_so_far():
    model = ScriptedModel([review(revision="x")], cycle=True)
    c = ctx(tool={"order_id": "A1234"}, profile={"constraints": ["vegetarian"]})
    out = await refinery(model, max_calls_per_turn=0).refine(
        c, "Order A1234 ships with steak on 2025-01-02.", RefinePlan(refiners=["factuality", "persona"]))
    assert model.requests == [] and out.final == "Order A1234 ships with steak on 2025-01-02."
    assert any("budget spent" in n for n in out.notes)


async def test_wall_clock_budget_returns_the_deterministic_fixes_and_says_so():
    slow = ScriptedModel([review(revision="too late")], delay=2.0)
    c = ctx(profile={"constraints": ["vegetarian"]})
    out = await refinery(slow, refine_wall_s=0.4, model_timeout_s=5).refine(
        c, "Order A1234 was delivered; enjoy a steak.", RefinePlan(refiners=["factuality", "persona"]))
    assert out.final == "Order A1234 was shipped; enjoy a steak."  # factuality's fix survived
    assert out.notes and ("timed out" in " ".join(out.notes) or "budget" in " ".join(out.notes))


@pytest.mark.parametrize("reply", ["", "{not json", json.dumps({"ok": False}), review(revision=""),
                                   review(revision="word " * 5000), RuntimeError("provider down")])
async def test_bad_refiner_replies_keep_the_previous_revision(reply):
    c = ctx(user="Any restaurant?", tool=None, profile={"constraints": ["vegetarian"]})
    draft = "Try the steak at Bruno's."
    out = await run(refinery(ScriptedModel([reply]), max_revision_chars=2000), c, draft)
    assert out.final == draft and out.steps[0].changed is False
    assert "kept the previous revision" in out.steps[0].feedback or out.steps[0].feedback.startswith("no change")


async def test_each_refiner_gets_an_apply_guardrail_span_with_its_decision():
    _exporter.clear()
    c = ctx(profile={"units": "metric"})
    await refinery().refine(c, "Order A1234 shipped from 10 miles away.", RefinePlan(refiners=["factuality", "persona"]))
    spans = {s.name: s for s in _exporter.get_finished_spans() if s.name.startswith("apply_guardrail")}
    assert spans["apply_guardrail factuality"].attributes["gen_ai.security.decision.type"] == "allow"
    assert spans["apply_guardrail persona"].attributes["gen_ai.security.decision.type"] == "modify"


async def test_invalid_profile_is_ignored_with_a_span_event():
    _exporter.clear()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("turn"):
        r = refinery()
        assert r.may_refine(ctx(user="hi", tool=None, profile={"tone": "shouty", "x": 1})) is False
    events = [e for s in _exporter.get_finished_spans() for e in s.events]
    assert any(e.name == "rein.persona.invalid_profile" for e in events)


async def test_factuality_checks_operator_documents_too():
    c = ctx(user="Is there a fee if I return it?", tool=None).model_copy(
        update={"documents": ["Return window: 30 days\nRestocking fee: $5.00"]})
    out = await run(refinery(), c, "You can return it within 30 days; the restocking fee is $7.50.")
    assert out.final == "You can return it within 30 days; the restocking fee is $5.00."
    # $15.00 is three times the fee: a sum rein cannot rule out, so it is left as written
    tripled = "You can return it within 30 days; the restocking fee is $15.00."
    assert (await run(refinery(), c, tripled)).final == tripled
    assert "the document" in out.steps[0].feedback
