"""Scorers on hand-built dialogues, and pass^k / success rates against hand-computed values."""
from __future__ import annotations

import asyncio

import pytest

from sim_tests.domains import get_domain
from sim_tests.log import TrialRecord
from sim_tests.metrics import costs, mean_pass_hat_k, pass_hat_k, table
from sim_tests.suites import load_suite
from sim_tests.scorers import Outcome, expected_db_hash, score


def scenario(i: str):
    return next(s for n in ("retail", "travel") for s in load_suite(n).scenarios if s.id == i)


def call(name, args, id_="c1"):
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": id_, "type": "function", "function": {"name": name, "arguments": args}}]}


def outcome(s, messages, env=None, ended_by="stop"):
    env = env or get_domain(s.domain).environment()
    return Outcome(s, [{"role": "system", "content": "policy"}, *messages], env.calls, env.hash(),
                   expected_db_hash(s), ended_by)


def by_name(o):
    return {x.name: x for x in asyncio.run(score(o))}


def test_db_state_matches_only_the_gold_state():
    s = scenario("retail-cancel-kettle")
    env = get_domain("retail").environment()
    env.execute("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"})
    assert by_name(outcome(s, [], env))["db_state"].passed
    wrong = get_domain("retail").environment()
    wrong.execute("cancel_pending_order", {"order_id": "R1003", "reason": "no_longer_needed"})
    result = by_name(outcome(s, [], wrong))["db_state"]
    assert not result.passed and "cancel_pending_order" in result.detail
    untouched = by_name(outcome(s, []))["db_state"]
    assert not untouched.passed and "writes made: none" in untouched.detail


def test_gold_actions_that_fail_are_a_scenario_error():
    s = scenario("retail-cancel-kettle")
    bad = s.model_copy(update={"criteria": s.criteria.model_copy(update={"actions": [
        s.criteria.actions[0].model_copy(update={"args": {"order_id": "R1001", "reason": "no_longer_needed"}})]})})
    with pytest.raises(ValueError, match="gold action cancel_pending_order fails"):
        expected_db_hash(bad)


def test_required_information_must_appear_in_the_agent_replies():
    s = scenario("retail-cancel-kettle")  # communicate: ["39"]
    said = [{"role": "user", "content": "39?"}, {"role": "assistant", "content": "Done, refund on its way."}]
    assert not by_name(outcome(s, said))["communicated"].passed  # the user saying it does not count
    said.append({"role": "assistant", "content": "You will get 39.00 back."})
    assert by_name(outcome(s, said))["communicated"].passed


def test_clarify_recovery_needs_a_question_before_any_write():
    s = scenario("retail-cancel-kettle--vague_reference")
    asked = [{"role": "user", "content": "cancel my order"}, {"role": "assistant", "content": "Which one: R1002 or R1003?"}]
    assert by_name(outcome(s, asked))["recovery"].passed
    acted = [{"role": "user", "content": "cancel my order"},
             call("cancel_pending_order", '{"order_id": "R1003", "reason": "no_longer_needed"}'),
             {"role": "tool", "tool_call_id": "c1", "content": '{"status": "cancelled"}'},
             {"role": "assistant", "content": "Cancelled R1003. Anything else?"}]
    assert not by_name(outcome(s, acted))["recovery"].passed
    looked = [{"role": "user", "content": "cancel my order"}, call("list_user_orders", '{"user_id": "u_ava"}'),
              {"role": "tool", "tool_call_id": "c1", "content": "[]"},
              {"role": "assistant", "content": "You have two pending orders; which one?"}]
    assert by_name(outcome(s, looked))["recovery"].passed  # reads before asking are fine
    told = [{"role": "user", "content": "cancel my order"}, {"role": "assistant", "content": "Cancelled."}]
    assert not by_name(outcome(s, told))["recovery"].passed


def test_decline_recovery_accepts_a_refusal_or_a_transfer():
    s = scenario("travel-cancel-bergen--unsupported_operation")
    refused = [{"role": "user", "content": "add a passenger"},
               {"role": "assistant", "content": "I'm sorry, I can't add passengers to a booking."}]
    assert by_name(outcome(s, refused))["recovery"].passed
    env = get_domain("travel").environment()
    env.execute("transfer_to_human_agents", {"summary": "add passenger"})
    moved = [{"role": "user", "content": "add a passenger"}, {"role": "assistant", "content": "One moment."}]
    assert by_name(outcome(s, moved, env))["recovery"].passed
    rein_handover = [{"role": "user", "content": "add a passenger"},
                     {"role": "assistant", "content": "I'm transferring you to a human agent who can help."}]
    assert by_name(outcome(s, rein_handover))["recovery"].passed
    ignored = [{"role": "user", "content": "add a passenger"}, {"role": "assistant", "content": "Done!"}]
    assert not by_name(outcome(s, ignored))["recovery"].passed


def test_retry_recovery_needs_a_later_success_of_the_failed_tool():
    s = scenario("retail-cancel-kettle--tool_failure")
    env = get_domain("retail").environment([s.failure])
    env.execute("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"})
    assert not by_name(outcome(s, [], env))["recovery"].passed
    env.execute("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"})
    result = by_name(outcome(s, [{"role": "assistant", "content": "Refund of 39 done."}], env))
    assert result["recovery"].passed and result["db_state"].passed
    assert "never called" in by_name(outcome(s, []))["recovery"].detail


def test_turn_limit_and_user_stop():
    s = scenario("retail-cancel-kettle")
    assert not by_name(outcome(s, [], ended_by="turn_limit"))["turn_limit"].passed
    assert by_name(outcome(s, [], ended_by="transfer"))["turn_limit"].passed
    assert by_name(outcome(s, []))["recovery"].detail == "no recovery action expected"


@pytest.mark.parametrize(("n", "c", "k", "want"), [
    (4, 3, 1, 0.75), (4, 3, 2, 0.5), (4, 3, 3, 0.25), (4, 3, 4, 0.0), (4, 4, 4, 1.0),
    (5, 2, 2, 0.1), (5, 0, 1, 0.0), (3, 2, 2, 1 / 3)])
def test_pass_hat_k_is_c_choose_k_over_n_choose_k(n, c, k, want):
    assert pass_hat_k(n, c, k) == pytest.approx(want)


def test_pass_hat_k_averages_over_tasks_and_skips_tasks_with_too_few_trials():
    assert mean_pass_hat_k([(4, 4), (4, 2)], 2) == pytest.approx((1 + 1 / 6) / 2)
    assert mean_pass_hat_k([(4, 4), (2, 1)], 3) == pytest.approx(1.0)
    assert mean_pass_hat_k([(2, 1)], 3) is None
    with pytest.raises(ValueError):
        pass_hat_k(2, 1, 3)


def trial(sid, label, arm, k, status, tokens=0):
    from sim_tests.log import TurnRecord
    return TrialRecord(scenario_id=sid, label=label, domain="retail", arm=arm, trial=k, status=status,
                       turns=[TurnRecord(user_turn=1, latency_ms=10.0 * (k + 1), prompt_tokens=tokens, rein_calls=k)],
                       duration_s=1.0)


def test_table_gives_success_rate_and_pass_k_per_arm_and_error_type_without_errors():
    trials = [trial("a", "clean", "bare", k, s) for k, s in enumerate(["passed", "passed", "failed", "error"])]
    trials += [trial("b", "vague_reference", "bare", k, s) for k, s in enumerate(["passed", "failed", "failed", "failed"])]
    trials += [trial("b", "vague_reference", "rein", k, "passed", tokens=5) for k in range(4)]
    cells = {(c.arm, c.label): c for c in table(trials)}
    clean = cells[("bare", "clean")]
    assert (clean.trials, clean.errors, clean.passed, clean.success_rate) == (4, 1, 2, pytest.approx(2 / 3))
    assert clean.pass_k == {1: pytest.approx(2 / 3), 2: pytest.approx(1 / 3), 3: 0.0}
    vague = cells[("bare", "vague_reference")]
    assert vague.success_rate == 0.25 and vague.pass_k[2] == 0.0
    overall = cells[("bare", "all")]  # tasks a (n=3, c=2) and b (n=4, c=1)
    assert overall.pass_k[1] == pytest.approx((2 / 3 + 1 / 4) / 2)
    assert overall.pass_k[2] == pytest.approx((1 / 3 + 0) / 2)  # C(2,2)/C(3,2) and C(1,2)/C(4,2)
    assert 4 not in overall.pass_k or overall.pass_k[4] == pytest.approx(0.0)
    assert cells[("rein", "vague_reference")].pass_k[4] == 1.0
    rein = {c.arm: c for c in costs(trials)}["rein"]
    assert rein.tokens_per_trial == 5 and rein.rein_calls_per_trial == 1.5 and rein.turn_latency_ms_p50 == 30.0
