"""The HTML report reads at a glance: every chart says what it shows, the pass^k chart keeps arms
that score alike apart, and each failed trial's reason stands next to it without expanding."""
from __future__ import annotations

import asyncio
import re
from html import unescape

import pytest

from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig, RunLog
from sim_tests.reports import render_html
from sim_tests.reports.svg import curves
from sim_tests.runner import Runner
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
ARMS = ["bare", "rein", "prompt"]


def run(trials: int) -> RunLog:
    by = {s.id: s for s in load_suite("retail").scenarios}
    suite = Suite(name="mini", scenarios=[by["retail-cancel-kettle"], by["retail-cancel-kettle--vague_reference"]])
    config = RunConfig(suite="mini", agent="scripted", arms=ARMS, policy="structural", trials=trials)
    return asyncio.run(Runner(suite, ScriptedAgent(), make_arms(ARMS, "structural"), config, progress=None).run())


@pytest.fixture(scope="module")
def one_trial() -> RunLog:
    return run(1)


def charts(page: str) -> list[str]:
    return re.findall(r"<svg.*?</svg>", page, flags=re.S)


def visible(svg: str, cls: str) -> str:
    found = re.search(rf'<text class="{cls}"[^>]*>(.*?)</text>', svg)
    return unescape(found.group(1)) if found else ""


def test_every_chart_has_a_visible_title_and_a_note(one_trial):
    svgs = charts(render_html(one_trial))
    assert len(svgs) == 2
    titles = [visible(s, "chart-title") for s in svgs]
    assert titles[0] == "Success rate by error type and arm" and titles[1].startswith("pass^k by arm")
    assert all(visible(s, "chart-note") for s in svgs)
    for svg in svgs:  # a legend naming every arm
        assert [unescape(x) for x in re.findall(r'<text class="legend"[^>]*>(.*?)</text>', svg)] == ARMS


def test_pass_k_with_arms_alike_draws_one_mark_per_arm_apart(one_trial):
    pass_k = charts(render_html(one_trial))[1]
    assert "--trials 3" in visible(pass_k, "chart-note")  # one k: the note says how to get a curve
    marks = re.findall(r'<(circle|rect|polygon)[^>]*?(?:cx="([\d.]+)"|x="([\d.]+)"|points="([\d.]+))[^>]*>'
                       r'<title>(\w+) pass\^1 = ', pass_k)
    assert [m[4] for m in marks] == ARMS
    xs = [float(m[1] or m[2] or m[3]) for m in marks]
    assert len(set(xs)) == len(ARMS)  # the same value, yet not drawn on top of each other
    labels = re.findall(r'<text x="[\d.]+" y="([\d.]+)" font-size="11" fill="#[0-9a-f]+">(\w+) (\d+)%</text>', pass_k)
    assert sorted(name for _, name, _ in labels) == sorted(ARMS)
    assert len({y for y, _, _ in labels}) == len(ARMS)  # the arms' end labels do not overprint


def test_curves_over_several_k_keep_a_line_per_arm():
    svg = curves({"bare": {1: .5, 2: .25}, "rein": {1: .5, 2: .25}}, "pass^k", "note")
    lines = re.findall(r"<polyline[^>]*>", svg)
    assert len(lines) == 2 and "stroke-dasharray" in lines[1]  # an equal line still shows under the other


def test_each_failed_trial_shows_its_reason_beside_it(one_trial):
    page = render_html(one_trial)
    summaries = re.findall(r'<details class="trial"[^>]*data-status="(\w+)"><summary>(.*?)</summary>', page)
    assert len(summaries) == len(one_trial.trials)
    failed = [t for t in one_trial.trials if t.status != "passed"]
    assert failed, "the bare agent fails the vague reference"
    for (status, summary), trial in zip(summaries, one_trial.trials):
        reason = re.search(r'<span class="reason" title="([^"]*)">', summary)
        if status == "passed":
            assert reason is None
        else:
            assert reason and unescape(reason.group(1)) == trial.reason and "recovery:" in trial.reason
