"""`rein sim run` never passes a CI job when nothing ran: an agent nobody can reach stops the run
after its first trial, and trials that errored (no verdict) make the exit code non-zero, with a count."""
from __future__ import annotations

import time

from fake_upstream import free_port

from middleware.cli import main
from sim_tests.log import RunLog


def broken_agent(messages, tools=None):
    """An agent whose every turn crashes (the agent's own bug, not a connection failure)."""
    raise RuntimeError("the agent's own bug")


def test_an_unreachable_agent_stops_the_run_after_the_first_trial(tmp_path, capsys):
    out = tmp_path / "run"
    agent = f"http://127.0.0.1:{free_port()}/v1"  # a loopback port nobody listens on
    started = time.perf_counter()
    code = main(["sim", "run", "smoke", "--agent", agent, "--arms", "bare,rein", "--policy", "structural",
                 "--retries", "0", "--out", str(out), "--quiet"])
    elapsed = time.perf_counter() - started
    err = capsys.readouterr().err
    assert code == 1
    log = RunLog.load(out / "run.json")
    total = len(log.scenarios) * 2
    assert log.status == "stopped" and len(log.trials) == 1 and log.trials[0].agent_unreachable
    assert "the agent could not be reached" in err and f"{total - 1} other trials not run" in err
    assert "stopped" in (out / "report.md").read_text()
    assert elapsed < 60  # one trial's connection error, not one per trial


def test_errored_trials_make_the_run_fail_with_a_count(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["sim", "run", "smoke", "--agent", "test_sim_exit:broken_agent", "--arms", "bare",
                 "--retries", "0", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    log = RunLog.load(out / "run.json")
    assert code == 1 and log.status == "complete"  # an agent that crashes is reached: every trial ran
    assert len(log.trials) == len(log.scenarios) and all(t.status == "error" for t in log.trials)
    assert f"{len(log.trials)} of {len(log.trials)} trials errored" in err and "the agent's own bug" in err


def test_a_run_where_every_trial_has_a_verdict_exits_zero(tmp_path, capsys):
    assert main(["sim", "run", "smoke", "--agent", "scripted", "--arms", "bare", "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    assert "errored" not in capsys.readouterr().err
