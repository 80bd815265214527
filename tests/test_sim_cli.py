"""`rein sim list | run | generate | report | schema` as a user types them."""
from __future__ import annotations

import json

import yaml

from middleware.cli import main
from sim_tests.log import RunLog
from sim_tests.scenario import load_suite


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


SLOW_AGENT = '''
import asyncio

calls = 0


async def answer(messages, tools=None):
    """Answers the first two trials at once, then hangs (until Ctrl-C)."""
    global calls
    calls += 1
    if calls > 2:
        await asyncio.sleep(3600)
    return "Your order has been cancelled."
'''


def test_ctrl_c_keeps_finished_trials_and_exits_130(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "sim", "run", "smoke", "--agent",
                             "slow_agent:answer", "--arms", "bare", "--concurrency", "1", "--out", str(out), "--quiet"],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = out / "trials.jsonl"
    deadline = time.monotonic() + 60
    while (not lines.exists() or len(lines.read_text().splitlines()) < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    log = RunLog.load(out / "run.json")
    assert log.status == "interrupted" and len(log.trials) == 2
    assert "interrupted; 2 finished trials kept" in stderr and "Traceback" not in stderr
    assert (out / "report.html").exists() and stdout.splitlines()[0].split()[-1] == "bare"
