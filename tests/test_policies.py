"""Policy packs: the shipped ones load, bad ones fail at load time naming the YAML path and line."""
from __future__ import annotations

import json
import textwrap

import pytest

from middleware.cli import main
from policies.loader import PolicyError, load_policy, parse_policy, shipped
from policies.schema import Policy

TAXONOMY_TYPES = {
    "ambiguous_request/vague_reference", "ambiguous_request/polysemy", "ambiguous_request/contradiction",
    "unsupported_request/unsupported_operation", "unsupported_request/unsupported_parameter",
    "unsupported_request/out_of_domain", "tool_failure", "action_loop",
    "malformed_tool_call/unknown_tool", "malformed_tool_call/schema_violation", "untrusted_instruction"}


def test_shipped_packs_load_and_do_what_their_names_say():
    assert {"passthrough", "structural", "default", "retail"} <= set(shipped())
    default = load_policy("default")
    assert {e.label for e in default.taxonomy} == TAXONOMY_TYPES
    assert default.inception.llm and default.inception.trigger == "on_signal"
    assert default.refiners.enabled  # the refiners block is kept as its owner wrote it
    structural = load_policy("structural")
    assert structural.inception.enabled and structural.inception.structural and not structural.inception.llm
    assert structural.refiners.enabled and not structural.refiners.llm
    assert load_policy("passthrough").passthrough


def test_domain_pack_extends_default_and_overrides_by_type():
    retail = load_policy("retail")
    labels = [e.label for e in retail.taxonomy]
    assert set(labels) == TAXONOMY_TYPES | {"policy_violation/final_sale"}
    assert len(labels) == len(set(labels))  # overridden, not duplicated
    assert "refund) or \"exchange\"" in retail.error_type("ambiguous_request", "polysemy").definition
    assert retail.error_type("tool_failure").plan == load_policy("default").error_type("tool_failure").plan
    assert {t.name for t in retail.recovery_tools} >= {"ask_clarification", "escalate_to_care_desk"}
    assert retail.budgets.model_timeout_s == 5


def problems(text: str) -> str:
    with pytest.raises(PolicyError) as e:
        parse_policy(textwrap.dedent(text), "mine.yaml")
    return str(e.value)


def test_unknown_key_names_its_path_and_line():
    msg = problems("""\
        name: mine
        inception:
          llm: false
          colour: red
        """)
    assert "mine.yaml: invalid policy" in msg
    assert "inception.colour (line 4): Extra inputs are not permitted" in msg


def test_bad_trigger_names_the_field_and_the_choices():
    msg = problems("name: mine\ninception: {trigger: sometimes}\n")
    assert "inception.trigger (line 2)" in msg and "'every_user_turn', 'on_signal' or 'always'" in msg


def test_missing_recovery_tool_is_a_load_error_naming_the_entry():
    msg = problems("""\
        name: mine
        taxonomy:
          - type: tool_failure
            plan: Tell the user.
          - type: action_loop
            recovery_tool: transfer_to_human
        recovery_tools:
          - {name: ask_clarification, description: Ask.}
        """)
    assert "taxonomy[1].recovery_tool (line 6)" in msg
    assert "'transfer_to_human', which recovery_tools does not define (defined: ask_clarification)" in msg


def test_cross_field_problems_are_all_reported():
    msg = problems("""\
        name: mine
        inception: {llm: true}
        taxonomy:
          - {type: tool_failure, plan: "failed: {evidnce}"}
          - {type: tool_failure}
          - {type: contradiction, signals: ["(unclosed"]}
        recovery_tools:
          - {name: think, description: clash}
          - {name: ask, description: Ask., parameters: {type: string}}
        """)
    for fragment in ("taxonomy[0].plan (line 4): unknown placeholder(s) ['evidnce']",
                     "taxonomy[1] (line 5): error type 'tool_failure' is defined twice",
                     "taxonomy[2].signals[0] (line 6): not a regular expression",
                     "recovery_tools[0].name (line 8): 'think' is the think tool's name",
                     "recovery_tools[1].parameters.type (line 9)"):
        assert fragment in msg, msg


def test_llm_without_taxonomy_is_refused():
    assert "inception.llm" in problems("name: mine\ninception: {llm: true}\n")


def test_not_a_mapping_and_bad_yaml_are_clear():
    assert "a policy is a YAML mapping" in problems("- just\n- a list\n")
    assert "not valid YAML" in problems("name: [unclosed\n")


def test_unknown_policy_name_lists_the_shipped_ones():
    with pytest.raises(PolicyError, match="not one of .*structural"):
        load_policy("no-such-policy")


def test_extends_a_file_next_to_it(tmp_path):
    (tmp_path / "base.yaml").write_text("name: base\nbudgets: {model_timeout_s: 3}\ninception: {llm: false}\n")
    (tmp_path / "team.yaml").write_text("name: team\nextends: base.yaml\nbudgets: {max_calls_per_turn: 1}\n")
    team = load_policy(str(tmp_path / "team.yaml"))
    assert team.name == "team" and team.budgets.model_timeout_s == 3 and team.budgets.max_calls_per_turn == 1


def test_policy_validate_command(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntaxonomy:\n  - {type: tool_failure, recovery_tool: nope}\n")
    assert main(["policy", "validate", "default", str(bad)]) == 1
    out, err = capsys.readouterr()
    assert "ok (policy 'default'" in out
    assert "taxonomy[0].recovery_tool (line 3): names recovery tool 'nope'" in err and "Traceback" not in err
    assert main(["policy", "validate", "retail"]) == 0


def test_policy_schema_command_prints_the_json_schema(capsys):
    assert main(["policy", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema == Policy.model_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["$defs"]["InceptionSettings"]["properties"]["trigger"]["enum"]) == {
        "every_user_turn", "on_signal", "always"}


def test_a_pack_that_extends_another_still_names_its_own_lines(tmp_path):
    mine = tmp_path / "mine.yaml"
    cases = {"refiners:\n  factuality_mode: shout\n": "refiners.factuality_mode (line 4): Input should be",
             "taxonomy:\n  - type: tool_failure\n    recovery_tool: nope\n": ".recovery_tool (line 5): names recovery tool"}
    for body, fragment in cases.items():
        mine.write_text("name: mine\nextends: default\n" + body)
        with pytest.raises(PolicyError) as e:
            parse_policy(mine.read_text(), str(mine))
        assert fragment in str(e.value), str(e.value)


def test_extends_a_missing_pack_names_the_file_that_says_it(tmp_path):
    for parent in ("missing-pack", "./missing.yaml"):
        mine = tmp_path / f"mine-{len(parent)}.yaml"
        mine.write_text(f"name: mine\nextends: {parent}\n")
        with pytest.raises(PolicyError) as e:
            load_policy(str(mine))
        assert str(e.value).startswith(f"{mine}: extends: ") and "missing" in str(e.value)
