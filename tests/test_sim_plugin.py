"""The pytest plugin: `pytest --rein-suite PATH` collects scenarios as items and runs them."""
from __future__ import annotations

import pytest

# Imported here so pytester's module snapshot keeps them: inner runs do not re-import them.
import sim_tests.agents  # noqa: F401
import sim_tests.arms  # noqa: F401
import sim_tests.trial  # noqa: F401
import sim_tests.reports  # noqa: F401
import sim_tests.runner  # noqa: F401
from sim_tests.scenario import SUITES, Suite, dump_suite
from sim_tests.suites import load_suite
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def quiet_ini(pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def suite_file(pytester, *ids: str) -> str:
    by = {s.id: s for s in load_suite("retail").scenarios}
    path = pytester.path / "mine.yaml"
    path.write_text(dump_suite(Suite(name="mine", scenarios=[by[i] for i in ids])))
    return str(path)


def test_scenarios_are_collected_as_items(pytester):
    path = suite_file(pytester, "retail-cancel-kettle", "retail-cancel-kettle--vague_reference")
    pytester.makepyfile(test_other="def test_not_collected(): pass")
    result = pytester.runpytest_inprocess("--rein-suite", path, "--rein-agent", "scripted", "--collect-only", "-q")
    out = result.stdout.str()
    assert "mine.yaml::retail-cancel-kettle" in out and "retail-cancel-kettle--vague_reference" in out
    assert "test_not_collected" not in out  # --rein-suite alone runs only the suite
    assert "2 tests collected" in out


def test_items_pass_when_criteria_hold_and_fail_with_the_reason(pytester):
    path = suite_file(pytester, "retail-cancel-kettle", "retail-cancel-kettle--vague_reference")
    result = pytester.runpytest_inprocess("--rein-suite", path, "--rein-agent", "scripted")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "scenario retail-cancel-kettle--vague_reference (vague_reference) under bare: failed" in out
    assert "recovery: first reply after turn 1 did not ask first" in out and "transcript (last 8 messages)" in out


def test_arms_trials_keyword_selection_and_run_log(pytester):
    path = suite_file(pytester, "retail-cancel-kettle", "retail-cancel-kettle--tool_failure")
    out_dir = pytester.path / "out"
    result = pytester.runpytest_inprocess(
        "--rein-suite", path, "--rein-agent", "scripted", "--rein-arm", "bare", "--rein-arm", "rein",
        "--rein-policy", "structural", "--rein-trials", "2", "--rein-out", str(out_dir), "-k", "tool_failure", "-v")
    result.assert_outcomes(passed=4)
    assert "retail-cancel-kettle--tool_failure[rein#1] PASSED" in result.stdout.str()
    assert (out_dir / "run.json").exists() and (out_dir / "report.html").exists()


def test_agent_errors_fail_the_item_as_a_trial_error(pytester):
    pytester.makepyfile(broken_agent="def answer(messages, tools=None):\n    raise ConnectionError('endpoint down')\n")
    pytester.syspathinsert()
    path = suite_file(pytester, "retail-cancel-kettle")
    result = pytester.runpytest_inprocess("--rein-suite", path, "--rein-agent", "broken_agent:answer")
    result.assert_outcomes(failed=1)
    assert "under bare: error" in result.stdout.str()
    assert "error: agent turn raised ConnectionError: endpoint down" in result.stdout.str()


def test_shipped_suite_by_name_and_bad_suite_is_a_usage_error(pytester):
    result = pytester.runpytest_inprocess("--rein-suite", "smoke", "--rein-agent", "scripted", "--collect-only", "-q")
    assert f"{len(load_suite('smoke').scenarios)} tests collected" in result.stdout.str()
    bad = pytester.path / "bad.yaml"
    bad.write_text("id: x\ndomain: retail\nuser: {goal: g}\nsurprise: 1\n")
    result = pytester.runpytest_inprocess("--rein-suite", str(bad))
    assert result.ret == 2 and "surprise: Extra inputs are not permitted" in result.stdout.str()
    result = pytester.runpytest_inprocess("--rein-suite", "no-such-suite")
    assert result.ret == 4 and "unknown suite 'no-such-suite'" in result.stderr.str()
    assert (SUITES / "smoke.yaml").exists()


def test_without_the_option_nothing_changes(pytester):
    pytester.makepyfile(test_plain="def test_ok(): pass")
    pytester.runpytest_inprocess().assert_outcomes(passed=1)
