"""User behaviour traits: each one on the scripted user (a seeded transform of its lines and rules)
and on the LLM user (an instruction in its prompt); variants, suites and the generate command."""
from __future__ import annotations

import asyncio
import re

import pytest

from middleware.cli import main
from middleware.models import FunctionModel
from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.trial import run_trial
from sim_tests.scenario import ScenarioError, TRAITS, parse_suite
from sim_tests.suites import load_suite
from sim_tests.scorers import expected_db_hash
from sim_tests.traits import COMPLAINTS, REMARKS, parse_traits, suite_with_traits, with_traits
from sim_tests.users import Exchange, LLMUser, ScriptedUser, user_prompt

ALL = {s.id: s for s in load_suite("retail").scenarios + load_suite("travel").scenarios}


def variant(scenario_id: str, *traits: str, seed: int = 7):
    v = with_traits(ALL[scenario_id], list(traits), seed)
    assert v is not None and v.user.traits == list(traits) and v.id == f"{scenario_id}@{'+'.join(traits)}"
    return v


def play(scenario, agent_replies: list[str]) -> list[str]:
    """What the scripted user says, given the agent's replies in order (stops at a stop token)."""
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


def trial(scenario, agent=None):
    arm = make_arms(["bare"])[0]
    return asyncio.run(run_trial(scenario, arm, agent or ScriptedAgent(), ScriptedUser(scenario),
                                 expected_hash=expected_db_hash(scenario)))


def test_withholding_gives_ids_only_when_asked():
    v = variant("retail-cancel-kettle", "withholding")
    said = play(v, ["Is there anything else I can help you with?", "Is there anything else I can help you with?"])
    assert "R1002" not in " ".join(said) and "u_ava" not in " ".join(said)
    assert said[0] == "Hi, I'm Ava. Please cancel my order, I no longer need it."
    asked = play(v, ["Could you give me the order id, please?"])
    assert "R1002" in asked[1] and "u_ava" in asked[1]
    # A rule agent that never asks fails this user; one that asks for the id succeeds.
    assert trial(v).status == "failed" and trial(v, ScriptedAgent(asks=True)).status == "passed"


def test_incremental_reveals_the_goal_over_turns():
    v = variant("retail-cancel-kettle", "incremental")
    said = play(v, ["How can I help?", "Order R1002 has been cancelled."])
    assert "R1002" not in said[0] and "cancel" not in said[0].lower() and "order" in said[0]
    assert "cancel order R1002" in said[1] and said[2] == "###STOP###"
    assert v.max_turns > ALL["retail-cancel-kettle"].max_turns
    assert trial(v).status == "passed"


def test_informal_is_lower_case_unpunctuated_seeded_and_keeps_ids_and_facts():
    v = variant("retail-address-lamp", "informal")
    first = play(v, [])[0]
    assert first == first.replace(".", "") and "R1003" in first and "7 Birch Lane, Springfield" in first
    assert first.startswith("hi im u_ava pls") and first == play(variant("retail-address-lamp", "informal"), [])[0]
    lines = {s: " ".join(play(with_traits(x, ["informal"], s), ["ok"])) for x in list(ALL.values())[:12]
             for s in (1, 2)}
    assert len(set(lines.values())) > len(lines) // 2  # the seed changes the typos
    assert trial(v).status == "passed"  # the address reached the tool as typed


def test_impatient_complains_then_gives_up_and_that_fails_the_agent():
    v = variant("retail-cancel-kettle", "impatient")
    trouble = "Sorry, there was a problem: 503."
    said = play(v, [trouble, trouble, trouble, trouble])
    assert said[2] in COMPLAINTS and said[-1].endswith("###GIVE-UP###") and len(said) == 4

    def stuck(request):
        return "Sorry, there was a problem on our side."
    from sim_tests.agents import ModelAgent
    record = trial(v, ModelAgent(FunctionModel(stuck)))
    assert record.ended_by == "gave_up" and record.status == "failed"
    assert next(s for s in record.scores if s.name == "patience").passed is False
    # With a working agent it never complains.
    assert trial(v).ended_by == "stop" and trial(v).status == "passed"


def test_tangent_makes_one_off_topic_remark_and_the_script_resumes():
    v = variant("retail-cancel-kettle", "tangent")
    said = play(v, ["Order R1002 has been cancelled.", "Anything else?"])
    assert said[1] in REMARKS and said[2] == "###STOP###"
    assert trial(v).status == "passed"


def test_goal_shift_brings_a_second_goal_and_the_criteria_hold_both():
    v = variant("retail-cancel-kettle", "goal_shift")
    assert [a.tool for a in v.criteria.actions] == ["cancel_pending_order", "return_delivered_order"]
    said = play(v, ["Order R1002 has been cancelled.", "Done: R1001 return requested."])
    assert "R1001" in said[1] and said[2] == "###STOP###"
    assert trial(v).status == "passed"
    # Stopping after the first goal fails the shifted scenario: its gold state has both.
    assert expected_db_hash(v) != expected_db_hash(ALL["retail-cancel-kettle"])
    assert with_traits(ALL["travel-emil-cancel"], ["goal_shift"]) is None  # no second goal for Emil


def test_role_asks_for_someone_else():
    v = variant("travel-cancel-bergen", "role")
    first = play(v, [])[0]
    assert re.search(r"I'm asking for my (mother|father|grandmother|husband), (her|his) user id is t_dana", first)
    assert "B501" in first and trial(v).status == "passed"


@pytest.mark.parametrize("trait", TRAITS)
def test_every_trait_reaches_the_llm_user_prompt(trait):
    v = variant("retail-cancel-kettle", trait)
    prompts = []

    def fake(request):
        prompts.append(request.messages[0].content)
        return "hi"
    asyncio.run(LLMUser(v, FunctionModel(fake)).reply([]))
    assert "How you behave:" in prompts[0] and prompts[0] == user_prompt(v)
    assert "How you behave:" not in user_prompt(ALL["retail-cancel-kettle"])


@pytest.mark.parametrize("trait", TRAITS)
def test_every_trait_runs_on_every_shipped_scenario_without_error(trait):
    for scenario in ALL.values():
        v = with_traits(scenario, [trait], 3)
        if v is None:
            continue
        record = trial(v)
        assert record.status != "error" and record.trait == trait, record.error


def test_goal_shift_named_by_hand_needs_its_second_goal():
    raw = ALL["retail-cancel-kettle"].model_dump(mode="json", exclude_defaults=True)
    raw["user"]["traits"] = ["goal_shift"]
    with pytest.raises(ScenarioError, match="user.shift"):
        parse_suite(raw, "hand.yaml")


def test_trait_specs_and_whole_suites():
    assert parse_traits("withholding,informal+impatient") == [["withholding"], ["informal", "impatient"]]
    with pytest.raises(ValueError, match="unknown trait"):
        parse_traits("shy")
    suite = suite_with_traits(load_suite("retail-clean"), "informal,role", seed=2)
    assert [s.trait for s in suite.scenarios].count("cooperative") == 4 and len(suite.scenarios) == 12


def test_generate_writes_reproducible_trait_variants(tmp_path, capsys):
    out1, out2 = tmp_path / "a.yaml", tmp_path / "b.yaml"
    args = ["sim", "generate", "retail-clean,travel-clean", "--traits", "withholding,informal+impatient"]
    out3 = tmp_path / "c.yaml"
    for out, seed in ((out1, "5"), (out2, "5"), (out3, "6")):
        assert main([*args, "--seed", seed, "--name", "x", "--out", str(out)]) == 0
    assert out1.read_text() == out2.read_text() != out3.read_text()
    suite = load_suite(str(out1))
    assert {s.trait for s in suite.scenarios} == {"cooperative", "withholding", "informal+impatient"}
    assert all(s.user.seed == 5 for s in suite.scenarios if s.user.traits)


def test_the_realistic_suite_covers_every_trait_in_both_domains():
    suite = load_suite("realistic")
    assert {s.trait for s in suite.scenarios} == {"cooperative", *TRAITS}
    assert {s.domain for s in suite.scenarios if s.user.traits} == {"retail", "travel"}
