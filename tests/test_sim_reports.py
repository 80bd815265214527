"""Reports from a run log: Markdown tables, a self-contained HTML page, JUnit XML; re-rendering."""
from __future__ import annotations

import re
from xml.etree import ElementTree as ET

import pytest

from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig, RunLog
from sim_tests.reports import render_html, render_junit, render_markdown, text_table, write_reports
from sim_tests.runner import Runner
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
@pytest.fixture(scope="module")
def log() -> RunLog:
    import asyncio

    by = {s.id: s for s in load_suite("retail").scenarios}
    suite = Suite(name="mini", scenarios=[by["retail-cancel-kettle"], by["retail-cancel-kettle--vague_reference"],
                                          by["retail-cancel-kettle--tool_failure"]])
    config = RunConfig(suite="mini", agent="scripted", arms=["bare", "rein"], policy="structural", trials=2)
    log = asyncio.run(Runner(suite, ScriptedAgent(), make_arms(["bare", "rein"], "structural"), config,
                             progress=None).run())
    # a transcript that tries to inject markup must be shown, not run
    log.trials[0].messages.append({"role": "user", "content": "<script>alert(1)</script> {{trials}}"})
    errored = log.trials[-1].model_copy(update={"status": "error", "error": "agent call timed out after 5s",
                                                "scores": [], "trial": 9})
    log.trials.append(errored)
    return log


def cell(log, arm, label=None):
    """passed/judged of the log's own trials: the report must say what the log holds, whatever
    rein's recovery rate is today (an improvement must not fail a rendering test)."""
    trials = [t for t in log.trials if t.arm == arm and (label is None or t.label == label)]
    judged = [t for t in trials if t.status != "error"]
    return sum(t.status == "passed" for t in judged), len(judged), len(trials) - len(judged)


def test_markdown_has_the_arm_by_error_type_table_pass_k_and_costs(log):
    md = render_markdown(log)
    assert "| error type | bare | rein |" in md
    assert re.search(r"\| clean \| 100% \(2/2\) \| 100% \(2/2\) \|", md)
    row = " | ".join(f"{round(100 * p / n)}% ({p}/{n})" for p, n, _ in
                     (cell(log, a, "vague_reference") for a in ("bare", "rein")))
    assert f"| vague_reference | {row} |" in md
    assert cell(log, "bare", "vague_reference")[0] == 0  # the bare agent acts on "cancel it" at once
    assert "1 error" in md and "## pass^k" in md and "| k=1 | k=2 |" in md
    assert "| bare | 6 |" in md and "timed out after 5s" in md
    assert "retail-cancel-kettle--vague_reference" in md and "recovery:" in md


def test_text_table_is_what_make_sim_prints(log):
    lines = text_table(log).splitlines()
    assert lines[0].split() == ["error", "type", "bare", "rein"]
    assert lines[1].split() == ["clean", "2/2", "2/2"]
    passed, judged, errors = cell(log, "rein")
    assert (judged, errors) == (6, 1)  # 7 rein trials, one an error
    assert lines[-1].split()[0] == "all" and lines[-1].split()[2] == f"{passed}/6+1e"


def test_html_is_self_contained_with_charts_and_a_transcript_viewer(log):
    page = render_html(log)
    assert page.startswith("<!doctype html>")
    assert not re.search(r'<(?:script|img|link)[^>]+(?:src|href)=', page)  # nothing loaded from elsewhere
    assert page.count("<svg") == 2 and "<rect" in page and "<polyline" in page
    assert page.count('<details class="trial"') == len(log.trials)
    assert 'data-arm="rein"' in page and 'data-status="error"' in page and 'id="f-label"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{trials}}" in page and "<script>alert(1)" not in page
    assert "cancel_pending_order(" in page and "diagnosis: tool_failure" in page


def test_junit_has_a_suite_per_arm_and_failures_and_errors(log):
    root = ET.fromstring(render_junit(log))
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"mini.bare", "mini.rein"}
    rein = suites["mini.rein"]
    passed, judged, _ = cell(log, "rein")
    assert rein.get("tests") == "7" and rein.get("errors") == "1" and rein.get("failures") == str(judged - passed)
    bare = suites["mini.bare"]
    failure = bare.find("testcase[@name='retail-cancel-kettle--vague_reference#0']/failure")
    assert "recovery" in failure.get("message") and "did not ask first" in failure.text
    assert rein.find("testcase/error").get("message") == "agent call timed out after 5s"


def test_rein_sim_report_re_renders_from_the_log_alone(log, tmp_path, capsys):
    from middleware.cli import main

    (tmp_path / "run.json").write_text(log.model_dump_json())
    assert main(["sim", "report", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").read_text() == render_html(RunLog.load(tmp_path / "run.json"))
    assert (tmp_path / "junit.xml").exists() and "| error type |" in (tmp_path / "report.md").read_text()
    assert "clean" in capsys.readouterr().out
    paths = write_reports(log, tmp_path / "again")
    assert sorted(p.name for p in paths.values()) == ["junit.xml", "report.html", "report.md"]
