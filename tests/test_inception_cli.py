"""`rein diagnose FILE...`: one JSON line per file, in one process; bad files say why and go on."""
from __future__ import annotations

import json
from pathlib import Path

from middleware.cli import main

SET = Path(__file__).parent / "data" / "dialogues"


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_diagnose_many_files_with_the_structural_policy(capsys):
    files = [SET / "fail_json_error.json", SET / "clean_ref_focus.json", SET / "unknown_tool_refund.json"]
    assert main(["diagnose", "--policy", "structural", *map(str, files)]) == 0
    out = lines(capsys)
    assert [o["file"] for o in out] == list(map(str, files))
    assert all(set(o) == {"file", "errors", "plan", "model_calls"} and o["model_calls"] == 0 for o in out)
    failing, clean, unknown = out
    assert failing["errors"] == [{"type": "tool_failure", "subtype": None, "confidence": 1.0, "source": "structural",
                                  "evidence": 'get_order returned: {"error": "order service unavailable"}',
                                  "rule": None, "hold": False, "call_id": None}]  # rule None: detect:<label>
    assert "report the internal error" in failing["plan"]
    assert clean == {"file": str(files[1]), "errors": [], "plan": None, "model_calls": 0}
    # The last message is the agent's draft tool call: it is checked too.
    assert unknown["errors"][0]["subtype"] == "unknown_tool" and "refund_order" in unknown["errors"][0]["evidence"]


def test_bad_files_get_an_error_line_and_exit_1(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"messages": [{"role": "wizard", "content": "hi"}]}))
    good = SET / "clean_greeting.json"
    assert main(["diagnose", "--policy", "structural", str(broken), str(wrong), str(good)]) == 1
    out = lines(capsys)
    assert out[0]["file"] == str(broken) and out[0]["error"].startswith("cannot read:")
    assert out[1]["file"] == str(wrong) and "error" in out[1]
    assert out[2]["errors"] == []


def test_unknown_policy_exits_2(capsys):
    assert main(["diagnose", "--policy", "nope", str(SET / "clean_greeting.json")]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
