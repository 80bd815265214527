"""The simulator judges the process too: the action rules replayed on a trial's replies; a trial
that reaches the gold state while breaking a rule is a lucky pass, and the reports say so per arm."""
from __future__ import annotations

from action_doubles import RULE, HoldCalls

from policies.loader import load_policy
from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig, RunLog
from sim_tests.reports.html import render_html
from sim_tests.reports.junit import render_junit
from sim_tests.reports.markdown import render_markdown
from sim_tests.runner import Runner
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
from sim_tests.scorers import Scorer, resolve, rule_findings, rules_check


def suite(*ids: str) -> Suite:
    by = {s.id: s for s in load_suite("travel").scenarios}
    return Suite(name="small", scenarios=[by[i] for i in ids])


OUTCOME = ["db_state", "communicated", "recovery", "turn_limit", "patience"]


def process_scorer() -> Scorer:
    return Scorer("actions", {}, rules_check(HoldCalls(load_policy("structural"), tool="cancel_booking")))


async def run(scorers) -> RunLog:
    config = RunConfig(suite="small", agent="scripted", arms=["bare"], policy="structural")
    return await Runner(suite("travel-cancel-bergen"), ScriptedAgent(), make_arms(["bare"]), config,
                        progress=None, scorers=scorers).run()


async def test_a_trial_that_reaches_the_gold_state_while_breaking_a_rule_is_a_lucky_pass():
    log = await run([*resolve(OUTCOME), process_scorer()])
    (trial,) = log.trials
    assert trial.status == "passed" and trial.lucky  # the verdict stays the outcome's
    assert trial.broken_rules == [RULE] and trial.reason == ""
    actions = next(s for s in trial.scores if s.name == "actions")
    assert actions.process and not actions.passed and "cancel_booking" in actions.detail
    md = render_markdown(log)
    assert "## Lucky passes by arm" in md and "| bare | 1 | 1 | 1 | 1 | 1 |" in md
    assert f"| {RULE} | 1 (1 trials) |" in md and "## Lucky passes\n" in md
    html = render_html(log)
    assert "Rule violations by arm" in html and "(lucky: broke " + RULE in html
    assert "lucky pass: broke " + RULE in render_junit(log) and "<failure" not in render_junit(log)


async def test_without_a_process_score_nothing_is_lucky_and_the_reports_say_nothing_of_it():
    log = await run(resolve(OUTCOME))
    assert log.trials[0].status == "passed" and not log.trials[0].lucky
    assert "Lucky" not in render_markdown(log) and "Rule violations" not in render_html(log)


async def test_by_default_every_trial_is_judged_by_the_run_policys_action_rules():
    from sim_tests.scorers import DEFAULT

    scorers = resolve(None, {"policy": "structural"})
    assert [s.name for s in scorers] == list(DEFAULT) and scorers[-1].args == {"policy": "structural"}
    assert resolve([{"name": "actions", "args": {"policy": "default"}}], {"policy": "structural"})[0].args == \
        {"policy": "default"}  # a suite's own choice stands
    log = await run(scorers)
    assert log.trials[0].scores[-1].name == "actions" and log.trials[0].scores[-1].process


def test_replay_checks_each_reply_against_the_dialogue_before_it():
    checker = HoldCalls(load_policy("structural"), tool="cancel_booking")
    messages = [{"role": "system", "content": "policy"}, {"role": "user", "content": "cancel B501"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "get_booking_details",
                                                                  "arguments": '{"booking_id": "B501"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "{}"},
                {"role": "assistant", "content": None, "inner": True, "tool_calls": [
                    {"id": "c2", "type": "function", "function": {"name": "cancel_booking",
                                                                  "arguments": '{"booking_id": "B501"}'}}]}]
    found = rule_findings(checker, messages, None)
    assert [(i, name, d.rule_id) for i, name, d in found] == [(4, "cancel_booking", RULE)]
    assert checker.checked == 2  # every reply, each once


async def test_the_airline_pack_scores_a_trial_that_claims_an_action_it_never_made():
    """The shipped pack's built-in claimed_action, replayed on a reply: reported, whatever its mode."""
    from pathlib import Path

    import inception

    pack = Path(__file__).resolve().parents[1] / "examples" / "policies" / "airline.yaml"
    checker = inception.build(load_policy(str(pack)))
    messages = [{"role": "system", "content": "airline"}, {"role": "user", "content": "cancel ABC123"},
                {"role": "assistant", "content": "Your reservation ABC123 has been cancelled."}]
    tools = [{"type": "function", "function": {"name": "cancel_reservation", "parameters": {"type": "object"}}}]
    found = rule_findings(checker, messages, tools)
    assert [(i, name, d.rule_id) for i, name, d in found] == [(2, "reply", "action:builtin/claimed_action")]
