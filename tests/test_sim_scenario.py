"""Scenario files: the schema, loading suites, and clear errors naming the file and field."""
from __future__ import annotations

import pytest
import yaml

from sim_tests.scenario import (ScenarioError, Suite, dump_suite, schema, shipped_suites)

from sim_tests.suites import load_suite
CLEAN = {
    "id": "t1", "domain": "retail",
    "user": {"goal": "Cancel R1002", "script": [{"say": "Cancel order R1002 please."}]},
    "criteria": {"actions": [{"tool": "cancel_pending_order", "args": {"order_id": "R1002", "reason": "no_longer_needed"}}]},
}


def write(tmp_path, data, name="s.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_suite_loads_with_unique_ids_and_known_labels():
    names = shipped_suites()
    assert {"smoke", "retail", "travel", "retail-clean", "travel-clean"} <= set(names)
    for name in names:
        suite = load_suite(name)
        assert suite.scenarios
        for s in suite.scenarios:
            assert s.label in {"clean", "vague_reference", "polysemy", "contradiction", "unsupported_operation",
                               "unsupported_parameter", "out_of_domain", "tool_failure", "repeated_user_turn"}


def test_a_single_scenario_file_is_a_suite_named_after_the_file(tmp_path):
    suite = load_suite(str(write(tmp_path, CLEAN, "mine.yaml")))
    assert suite.name == "mine" and suite.scenarios[0].id == "t1" and suite.scenarios[0].label == "clean"


def test_a_folder_of_files_is_one_suite(tmp_path):
    write(tmp_path, CLEAN, "a.yaml")
    write(tmp_path, {**CLEAN, "id": "t2"}, "b.yaml")
    assert [s.id for s in load_suite(str(tmp_path)).scenarios] == ["t1", "t2"]


def test_unknown_key_names_the_file_and_the_field(tmp_path):
    bad = {**CLEAN, "user": {**CLEAN["user"], "mood": "grumpy"}}
    path = write(tmp_path, bad)
    with pytest.raises(ScenarioError) as e:
        load_suite(str(path))
    assert str(path) in str(e.value) and "user.mood" in str(e.value) and "Extra inputs" in str(e.value)


def test_unknown_key_in_a_suite_names_the_scenario_index(tmp_path):
    path = write(tmp_path, {"name": "x", "scenarios": [CLEAN, {**CLEAN, "id": "t2", "colour": 1}]})
    with pytest.raises(ScenarioError, match=r"scenarios\.1\.colour"):
        load_suite(str(path))


def test_unknown_tool_names_the_file_field_and_domain(tmp_path):
    bad = {**CLEAN, "criteria": {"actions": [{"tool": "refund_everything"}]}}
    path = write(tmp_path, bad)
    with pytest.raises(ScenarioError) as e:
        load_suite(str(path))
    msg = str(e.value)
    assert str(path) in msg and "criteria.actions.0.tool" in msg and "'refund_everything'" in msg and "retail" in msg


def test_unknown_failing_tool_domain_and_failure_type_are_reported(tmp_path):
    bad = {**CLEAN, "failure": {"type": "tool_failure", "tool": "nope"}}
    with pytest.raises(ScenarioError, match=r"failure\.tool: unknown tool 'nope'"):
        load_suite(str(write(tmp_path, bad)))
    with pytest.raises(ScenarioError, match=r"failure\.type: unknown failure type 'gremlins'"):
        load_suite(str(write(tmp_path, {**CLEAN, "failure": {"type": "gremlins"}})))
    with pytest.raises(ScenarioError, match=r"ambiguous_request has no subtype 'vibes'"):
        load_suite(str(write(tmp_path, {**CLEAN, "failure": {"type": "ambiguous_request", "subtype": "vibes"}})))
    with pytest.raises(ScenarioError, match=r"domain: unknown domain 'space'"):
        load_suite(str(write(tmp_path, {**CLEAN, "domain": "space"})))


def test_duplicate_ids_unreadable_yaml_and_unknown_suite_are_clear_errors(tmp_path):
    with pytest.raises(ScenarioError, match="repeated: t1"):
        load_suite(str(write(tmp_path, {"name": "x", "scenarios": [CLEAN, CLEAN]})))
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: [unclosed")
    with pytest.raises(ScenarioError, match="cannot read"):
        load_suite(str(broken))
    with pytest.raises(ScenarioError, match="unknown suite 'no-such-suite'"):
        load_suite("no-such-suite")


def test_json_schema_describes_suites_and_forbids_unknown_keys():
    s = schema()
    assert "scenarios" in s["properties"]
    assert s["$defs"]["Scenario"]["additionalProperties"] is False
    assert "failure" in s["$defs"]["Scenario"]["properties"]


def test_dump_and_load_round_trip(tmp_path):
    suite = load_suite("retail")
    path = tmp_path / "again.yaml"
    path.write_text(dump_suite(suite))
    assert load_suite(str(path)).scenarios == suite.scenarios
    assert isinstance(suite, Suite)
