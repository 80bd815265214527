"""The action checks on real agent trajectories (bench/real_actions.py): the targets of issue 18 on
the dev set, and no flood of holds from the built-in checks on another corpus with no pack."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import real_actions  # noqa: E402

DATA = ROOT.parent / "shared/data"
AIRLINE = DATA / "tau-bench-airline/dev.json"
OTHER = DATA / "agentdojo-dev/dev.json"


@pytest.fixture(scope="module")
def figures():
    if not AIRLINE.exists():
        pytest.skip("../shared/data is not here (real trajectories are never copied into the repository)")
    return real_actions.measure(AIRLINE, str(real_actions.PACK), AIRLINE.parent / "failures-dev.csv",
                                review=real_actions.REVIEW)


def test_dev_targets_holds_at_the_decisive_message_and_none_unexplained(figures):
    targets = real_actions.targets(figures)
    for name, (value, met) in targets.items():
        if name == "p99_cpu_ms":  # timing on a shared machine: the bench prints it, the test does not judge it
            continue
        assert met, f"{name}: {value:.3f}\n{real_actions.report(figures)}"
    assert any(n.startswith("category") for n in targets) and any(n.startswith("subtype") for n in targets)


def test_every_hold_in_a_successful_trajectory_is_listed_with_its_evidence(figures):
    assert len(figures["success_holds"]) == figures["held"]["successful"]
    for hold in figures["success_holds"]:
        assert hold["evidence"] and all(hold["reviewed"]), hold


def test_each_check_that_fired_is_counted_in_failed_and_successful_trajectories(figures):
    fired = figures["rules"]
    assert {"action:builtin/unconfirmed_write", "action:builtin/repeated_failed_write"} <= set(fired)
    for counts in fired.values():
        assert set(counts) == {"writes_failed", "writes_successful", "trajectories_failed", "trajectories_successful"}
        assert counts["trajectories_failed"] + counts["trajectories_successful"] > 0


def test_the_builtins_alone_raise_no_flood_of_holds_on_another_corpus(tmp_path):
    if not OTHER.exists():
        pytest.skip("../shared/data is not here")
    pack = tmp_path / "builtins.yaml"  # no rules, no tool list: every built-in check set to hold
    pack.write_text("name: builtins\nextends: structural\nactions:\n  builtins: {unconfirmed_write: plan, "
                    "unknown_id: plan, repeated_failed_write: plan, claimed_action: plan}\n")
    fig = real_actions.measure(OTHER, str(pack))
    ok = fig["writes"]["successful"]
    assert ok > 50
    mine = {f"action:builtin/{c}" for c in ("unconfirmed_write", "unknown_id", "repeated_failed_write", "claimed_action")}
    held = [h for h in fig["success_holds"] if mine & set(h["rules"])]  # other checks are judged on their own
    assert len(held) <= 0.01 * ok, real_actions.report(fig, with_targets=False)


def test_what_holds_by_default_holds_only_the_attacks_values_on_another_corpus():
    """untrusted_argument holds by default (policies.actions.BUILTIN_MODES says why): on AgentDojo
    every write it holds in a trajectory the benchmark counts as successful sends a value of the
    attack the corpus labels there, and it holds nothing in the conversations without attack."""
    if not OTHER.exists():
        pytest.skip("../shared/data is not here")
    fig = real_actions.measure(OTHER, "structural")
    assert fig["held"]["successful"] > 20 and fig["unexplained_success_holds"] == 0, real_actions.report(fig)
    clean = [h for h in fig["success_holds"] if h["at"].split("/")[-1].startswith("none")]
    assert clean == []
