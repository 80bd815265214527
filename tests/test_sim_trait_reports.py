"""Per-trait reports: arm × trait success, pass^k, satisfaction and lexical metrics, and rein's
per-trait diagnosis rate, in Markdown, HTML and JUnit — all from the run log."""
from __future__ import annotations

import asyncio
from xml.etree import ElementTree as ET

from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig, TrialRecord, TurnRecord
from sim_tests.reports import render_html, render_junit, render_markdown, text_table
from sim_tests.runner import Runner
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
from sim_tests.trait_metrics import diagnosis_rates, trait_table
from sim_tests.traits import suite_with_traits


def run_log():
    base = [s for s in load_suite("retail").scenarios if s.id.startswith("retail-cancel-kettle")
            and s.label in ("clean", "tool_failure")]
    suite = suite_with_traits(Suite(name="mini", scenarios=base), "withholding,informal", seed=1)
    config = RunConfig(suite="mini", agent="scripted", arms=["bare", "rein"], policy="structural", trials=2)
    return asyncio.run(Runner(suite, ScriptedAgent(), make_arms(["bare", "rein"], "structural"), config,
                              progress=None).run())


LOG = run_log()


def test_trait_table_has_every_arm_and_trait_with_satisfaction_and_lexical_metrics():
    cells = {(c.arm, c.trait): c for c in trait_table(LOG.trials)}
    assert set(cells) == {(a, t) for a in ("bare", "rein") for t in ("cooperative", "withholding", "informal")}
    coop, held = cells[("bare", "cooperative")], cells[("bare", "withholding")]
    assert coop.success_rate == 1.0 and held.success_rate == 0.0  # the rule agent never asks for the id
    assert coop.pass_k[2] == 1.0 and held.satisfaction < coop.satisfaction
    assert coop.user_side.user_turns > 0 and held.user_side.new_info_share < coop.user_side.new_info_share


def test_diagnosis_rate_pairs_each_variant_with_its_cooperative_version():
    rates = {(d.arm, d.trait): d for d in diagnosis_rates(LOG.trials)}
    assert set(rates) == {("rein", "cooperative"), ("rein", "withholding"), ("rein", "informal")}  # bare never diagnoses
    assert rates[("rein", "cooperative")].matched == 2 and rates[("rein", "cooperative")].pairs == 2
    assert rates[("rein", "informal")].rate == 1.0        # the tool failure is still found
    assert rates[("rein", "withholding")].rate == 0.0     # the agent never reached the failing tool


def test_diagnosis_rate_counts_a_variant_that_misses_an_error_type():
    def rec(sid, trait, types):
        turns = [TurnRecord(user_turn=1, latency_ms=1, diagnosis={"errors": [{"type": t} for t in types]})]
        return TrialRecord(scenario_id=sid, label="vague_reference", domain="retail", arm="rein", trial=0,
                           status="failed", trait=trait, turns=turns)
    trials = [rec("s--vague_reference", "cooperative", ["ambiguous_request", "tool_failure"]),
              rec("s--vague_reference@informal", "informal", ["tool_failure"]),
              rec("s--vague_reference@role", "role", ["tool_failure", "ambiguous_request"])]
    rates = {d.trait: d for d in diagnosis_rates(trials)}
    assert (rates["informal"].matched, rates["informal"].pairs) == (0, 1)
    assert (rates["role"].matched, rates["role"].pairs) == (1, 1)


def test_markdown_and_text_table_show_the_per_trait_sections():
    md = render_markdown(LOG)
    for title in ("## By user trait", "## User side: human-likeness", "## rein's diagnosis under user traits"):
        assert title in md
    assert "| bare | withholding | 0% (0/4) |" in md and "| rein | informal |" in md
    assert "(-" in md or "(+" in md  # changes against the cooperative user
    table = text_table(LOG)
    assert "user trait" in table and "withholding" in table


def test_html_has_trait_charts_tables_and_filter():
    page = render_html(LOG)
    assert "Success rate by user trait and arm" in page and "Satisfaction by user trait and arm" in page
    assert 'data-trait="withholding"' in page and 'id="f-trait"' in page and "{{" not in page


def test_junit_groups_by_trait_and_carries_satisfaction():
    root = ET.fromstring(render_junit(LOG).split("\n", 1)[1])
    classes = {c.get("classname") for c in root.iter("testcase")}
    assert "bare.withholding.clean" in classes and "rein.clean" in classes
    props = {p.get("name") for p in root.iter("property")}
    assert {"trait", "satisfaction.rules"} <= props
