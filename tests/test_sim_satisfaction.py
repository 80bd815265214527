"""Simulated satisfaction: signals and rules offline, and a judge model (scripted here) beside them."""
from __future__ import annotations

import asyncio
import json

from middleware.models import FunctionModel
from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig, TrialRecord
from sim_tests.runner import Runner
from sim_tests.satisfaction import judge_satisfaction, parse_judgement, rules_satisfaction, signals
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
def record(turns: list[tuple[str, str]], status="passed", ended_by="stop") -> TrialRecord:
    messages = [{"role": r, "content": t} for r, t in turns]
    return TrialRecord(scenario_id="s", label="clean", domain="retail", arm="bare", trial=0, status=status,
                       ended_by=ended_by, messages=messages)


SMOOTH = [("user", "Cancel order R1002."), ("assistant", "Done, R1002 is cancelled; 39 refunded."),
          ("user", "###STOP###")]
ROUGH = [("user", "Cancel my order."), ("assistant", "Which order id?"), ("user", "The kettle."),
         ("assistant", "Sorry, which order id?"), ("user", "I already told you, the kettle!"),
         ("assistant", "There was a problem: 503 error."), ("user", "Come on. R1002."),
         ("assistant", "Done, cancelled."), ("user", "###STOP###")]


def test_signals_count_what_a_user_minds():
    s = signals(record(ROUGH))
    assert s == {"repeated_asks": 2, "tool_failure_shown": 1, "frustration_turns": 2, "turns_to_success": 4,
                 "gave_up": 0}  # "which" and "id" each asked twice
    assert signals(record(ROUGH, status="failed"))["turns_to_success"] == 0


def test_rules_rate_smooth_rough_failed_and_given_up_dialogues():
    assert rules_satisfaction(record(SMOOTH)).score == 5
    rough = rules_satisfaction(record(ROUGH))
    assert rough.score == 1 and "frustration_turns" in rough.reason  # 5 - 2 - 1 - 2 - 1, floored at 1
    assert rules_satisfaction(record(SMOOTH, status="failed")).score == 2
    assert rules_satisfaction(record(SMOOTH[:2], ended_by="gave_up")).score == 1


def test_judge_reads_the_transcript_and_answers_on_the_scale():
    seen = []

    def judge(request):
        seen.append(request.messages[1].content)
        return 'Sure: {"score": 3, "reason": "done, but asked twice"}'
    rating = asyncio.run(judge_satisfaction(FunctionModel(judge), record(ROUGH)))
    assert rating.score == 3 and rating.source == "judge" and rating.reason == "done, but asked twice"
    assert seen[0].startswith("Customer: Cancel my order.\nAgent: Which order id?")
    assert parse_judgement("I'd say 4 out of 5").score == 4
    assert parse_judgement('{"score": 9}') is None and parse_judgement("no idea") is None


def _run(judge_model):
    suite = Suite(name="one", scenarios=[load_suite("retail").scenarios[0]])
    config = RunConfig(suite="one", agent="scripted", arms=["bare"], judge_model="scripted-judge")
    return asyncio.run(Runner(suite, ScriptedAgent(), make_arms(["bare"]), config, progress=None,
                              judge_model=judge_model).run())


def test_runner_keeps_rules_and_judge_side_by_side_and_a_broken_judge_changes_nothing():
    log = _run(FunctionModel(lambda r: json.dumps({"score": 4, "reason": "fine"})))
    (t,) = log.trials
    assert [(s.source, s.score) for s in t.satisfaction] == [("rules", 5), ("judge", 4)]

    def broken(request):
        raise RuntimeError("judge offline")
    (t,) = _run(FunctionModel(broken)).trials
    assert t.status == "passed" and [s.source for s in t.satisfaction] == ["rules"]
