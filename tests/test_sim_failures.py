"""Failure generators: each turns a clean scenario into a reproducible failing variant."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from middleware.cli import main
from sim_tests.failures import GENERATORS, generate
from sim_tests.scenario import SUITES
from sim_tests.suites import load_suite
from sim_tests.scorers import expected_db_hash
from sim_tests.users import Exchange, ScriptedUser


def clean(scenario_id: str):
    for name in ("retail-clean", "travel-clean"):
        for s in load_suite(name).scenarios:
            if s.id == scenario_id:
                return s
    raise KeyError(scenario_id)


def variant(scenario_id: str, label: str):
    (out,) = generate(clean(scenario_id), [label])
    assert out.label == label and out.source == scenario_id and out.id == f"{scenario_id}--{label}"
    return out


def play(scenario, agent_replies: list[str]) -> list[str]:
    """What the scripted user says, given the agent's replies in order."""
    user, seen, said = ScriptedUser(scenario), [], []

    async def go():
        for reply in [None, *agent_replies]:
            if reply is not None:
                seen.append(Exchange(role="assistant", text=reply))
            r = await user.reply(seen)
            said.append(r.text)
            if r.stop:
                break
            seen.append(Exchange(role="user", text=r.text))
    asyncio.run(go())
    return said


def test_every_label_of_the_default_taxonomy_has_a_generator():
    assert set(GENERATORS) == {"vague_reference", "polysemy", "contradiction", "unsupported_operation",
                               "unsupported_parameter", "out_of_domain", "tool_failure", "repeated_user_turn"}


def test_vague_reference_hides_the_id_and_answers_a_clarifying_question():
    v = variant("retail-cancel-kettle", "vague_reference")
    assert (v.failure.type, v.failure.subtype) == ("ambiguous_request", "vague_reference")
    assert v.user.script[0].say == "Hi, I'm u_ava. Please cancel my order, I no longer need it."
    assert v.criteria.recovery == "clarify" and v.criteria.actions == clean("retail-cancel-kettle").criteria.actions
    asked = play(v, ["Which order do you mean, R1002 or R1003?", "Cancelled order R1002."])
    assert asked[1] == "I mean order R1002." and asked[2] == "###STOP###"
    # an agent that does not ask goes on with the script as if nothing happened
    assert play(v, ["I will cancel it now, ok?"])[1] == "Yes, please go ahead."


def test_vague_reference_needs_several_entities_that_qualify():
    assert generate(clean("travel-emil-cancel"), ["vague_reference"]) == []  # Emil has one booking
    assert generate(clean("travel-emil-cancel"), ["contradiction"]) == []


def test_polysemy_uses_a_phrase_that_covers_the_gold_action():
    v = variant("retail-address-lamp", "polysemy")
    assert "change my order" in v.user.script[0].say and "R1003" in v.user.script[0].say
    assert "address" not in v.user.script[0].say
    said = play(v, ["Do you mean the address or exchanging an item?"])
    assert "change the shipping address of order R1003" in said[1]
    assert generate(clean("travel-cancel-bergen"), ["polysemy"]) == []  # no phrase covers cancel_booking


def test_contradiction_describes_the_target_as_another_entity():
    v = variant("retail-cancel-kettle", "contradiction")
    assert v.user.script[0].say.endswith("It's the blue mug one.")  # R1002 is the steel kettle
    assert "it is order R1002, the steel kettle one" in play(v, ["Which order did you mean?"])[1]


@pytest.mark.parametrize("label", ["unsupported_operation", "unsupported_parameter"])
def test_unsupported_requests_replace_the_goal_and_expect_no_change(label):
    v = variant("travel-cabin-upgrade", label)
    assert v.failure.type == "unsupported_request" and v.criteria.actions == [] and v.criteria.recovery == "decline"
    assert "B501" in v.user.script[0].say and "business" not in v.user.script[0].say
    assert expected_db_hash(v) == expected_db_hash(clean("travel-cabin-upgrade").model_copy(
        update={"criteria": v.criteria}))


def test_out_of_domain_keeps_the_task_and_adds_a_request_to_decline():
    v = variant("retail-return-pan", "out_of_domain")
    base = clean("retail-return-pan")
    assert v.user.script[0].say.startswith(base.user.script[0].say) and len(v.user.script[0].say) > len(base.user.script[0].say)
    assert v.criteria.actions == base.criteria.actions and v.criteria.recovery == "decline"


def test_tool_failure_breaks_the_gold_tool_once_and_asks_to_retry():
    v = variant("travel-move-flight", "tool_failure")
    assert (v.failure.tool, v.failure.times) == ("change_booking_flight", 1) and v.criteria.recovery == "retry"
    said = play(v, ["Sure?", "Sorry, there was a problem: 504 Gateway Timeout.", "ok"])
    assert "Could you please try again?" in said


def test_repeated_user_turn_says_the_first_request_twice():
    v = variant("retail-cancel-vase", "repeated_user_turn")
    assert v.user.script[0].say == v.user.script[1].say and v.failure.type == "action_loop"


def test_variants_are_only_made_from_clean_scenarios_and_known_labels():
    v = variant("retail-cancel-kettle", "polysemy")
    with pytest.raises(ValueError, match="clean"):
        generate(v)
    with pytest.raises(ValueError, match="unknown failure label"):
        generate(clean("retail-cancel-kettle"), ["gremlins"])


@pytest.mark.parametrize("name", ["retail", "travel"])
def test_shipped_generated_suites_are_reproducible(name, tmp_path):
    """Regenerating from the clean source gives exactly the shipped file."""
    out = tmp_path / f"{name}.yaml"
    assert main(["sim", "generate", f"{name}-clean", "--out", str(out), "--name", name]) == 0
    assert out.read_text() == (SUITES / f"{name}.yaml").read_text()
    assert [s.label for s in load_suite(str(out)).scenarios].count("clean") == 4
    assert Path(out).exists()
