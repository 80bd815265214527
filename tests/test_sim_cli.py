"""`rein sim list | run | generate | report | schema` as a user types them."""
from __future__ import annotations

import json

import pytest
import yaml

from middleware.cli import main
from sim_tests.log import RunLog
from sim_tests.suites import load_suite
def test_list_shows_the_shipped_suites(capsys):
    assert main(["sim", "list"]) == 0
    out = capsys.readouterr().out
    assert "smoke" in out and "retail" in out and "travel" in out and "vague_reference" in out


def test_schema_prints_json_schema(capsys):
    assert main(["sim", "schema"]) == 0
    assert "scenarios" in json.loads(capsys.readouterr().out)["properties"]


def test_generate_writes_a_suite_of_variants(tmp_path, capsys):
    out = tmp_path / "v.yaml"
    assert main(["sim", "generate", "travel-clean", "--only", "vague_reference,tool_failure", "--without-clean",
                 "--out", str(out)]) == 0
    suite = load_suite(str(out))
    assert suite.name == "v" and {s.label for s in suite.scenarios} == {"vague_reference", "tool_failure"}
    assert len(suite.scenarios) == 3 + 4  # travel-emil-cancel has no vague variant
    assert main(["sim", "generate", "retail-clean", "--only", "polysemy"]) == 0
    assert "retail-cancel-kettle--polysemy" in capsys.readouterr().out


def test_run_writes_log_and_reports_and_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["sim", "run", "smoke", "--agent", "scripted", "--arms", "bare,rein,prompt", "--policy", "structural",
            "--trials", "2", "--concurrency", "8", "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["error", "type", "bare", "rein", "prompt"]
    assert {p.name for p in out.iterdir()} >= {"run.json", "report.md", "report.html", "junit.xml", "trials.jsonl"}
    log = RunLog.load(out / "run.json")
    assert len(log.trials) == 6 * 3 * 2 and log.config.arms == ["bare", "rein", "prompt"]
    assert main(args) == 0  # resumed: nothing left to run, the same log
    assert len((out / "trials.jsonl").read_text().splitlines()) == 36
    assert main(args[:-3] + ["--only", "clean", "--out", str(tmp_path / "only"), "--quiet"]) == 0
    assert {t.label for t in RunLog.load(tmp_path / "only" / "run.json").trials} == {"clean"}


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"id": "x", "domain": "retail", "user": {"goal": "g"},
                                   "criteria": {"actions": [{"tool": "nuke"}]}}))
    assert main(["sim", "run", str(bad), "--agent", "scripted", "--arms", "bare"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "criteria.actions.0.tool: unknown tool 'nuke'" in err
    assert main(["sim", "run", "smoke", "--agent", "nonsense", "--arms", "bare"]) == 2
    assert "unknown agent" in capsys.readouterr().err
    assert main(["sim", "run", "smoke", "--agent", "scripted", "--arms", "bare,magic"]) == 2
    assert "unknown arm" in capsys.readouterr().err
    assert main(["sim", "report", str(tmp_path / "missing")]) == 2


# Agents that answer the first two trials at once, then hang in three ways: in an await (Ctrl-C
# cancels it), in a worker thread (nothing can cancel it), and in an await that swallows the
# cancellation (only a second Ctrl-C ends the run).
SLOW_AGENT = '''
import asyncio
import time

calls = 0


async def answer(messages, tools=None):
    global calls
    calls += 1
    if calls > 2:
        await asyncio.sleep(3600)
    return "Your order has been cancelled."


def blocking(messages, tools=None):
    global calls
    calls += 1
    if calls > 2:
        time.sleep(3600)
    return "Your order has been cancelled."


async def stubborn(messages, tools=None):
    global calls
    calls += 1
    while calls > 2:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            pass
    return "Your order has been cancelled."
'''


def _start_slow_run(tmp_path, agent):
    """`rein sim run` as a background job starts it: SIGINT inherited as ignored. Waits (without a
    deadline that a busy machine could miss) until two trials are on disk."""
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    stderr = (tmp_path / "stderr.txt").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "sim", "run", "smoke", "--agent",
                             f"slow_agent:{agent}", "--arms", "bare", "--concurrency", "1", "--out", str(out), "--quiet"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    lines = out / "trials.jsonl"
    while not lines.exists() or len(lines.read_text().splitlines()) < 2:
        assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
        time.sleep(0.05)
    return proc, out


def _wait_for(path, text):
    import time

    while text not in path.read_text():
        time.sleep(0.05)


@pytest.mark.parametrize("agent", ["answer", "blocking"])
def test_ctrl_c_keeps_finished_trials_and_exits_130(tmp_path, agent):
    import signal
    import time

    proc, out = _start_slow_run(tmp_path, agent)
    try:
        time.sleep(0.2)  # the third trial is in flight
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        proc.kill()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, stderr
    log = RunLog.load(out / "run.json")
    assert log.status == "interrupted" and len(log.trials) == 2
    assert "interrupted; 2 finished trials kept" in stderr and "Traceback" not in stderr
    assert (out / "report.html").exists() and stdout.splitlines()[0].split()[-1] == "bare"


def test_a_second_ctrl_c_ends_a_run_that_will_not_stop(tmp_path):
    import signal

    proc, out = _start_slow_run(tmp_path, "stubborn")
    try:
        proc.send_signal(signal.SIGINT)
        _wait_for(tmp_path / "stderr.txt", "Ctrl-C again to quit")  # two signals at once would merge
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=120)
    finally:
        proc.kill()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130 and "second Ctrl-C, stopping now" in stderr
    assert len((out / "trials.jsonl").read_text().splitlines()) == 2


def test_a_run_that_fails_shows_its_own_error(tmp_path, monkeypatch, capsys):
    """Anything but Ctrl-C surfaces as itself (not an UnboundLocalError from the clean-up)."""
    from sim_tests.runner import Runner

    async def broken(self):
        raise RuntimeError("the agent's set-up exploded")

    monkeypatch.setattr(Runner, "run", broken)
    with pytest.raises(RuntimeError, match="set-up exploded"):
        main(["sim", "run", "smoke", "--agent", "scripted", "--arms", "bare", "--out", str(tmp_path), "--quiet"])

    async def bad_value(self):
        raise ValueError("no such scorer")

    monkeypatch.setattr(Runner, "run", bad_value)
    assert main(["sim", "run", "smoke", "--agent", "scripted", "--arms", "bare", "--out", str(tmp_path)]) == 2
    assert "rein sim: no such scorer" in capsys.readouterr().err
