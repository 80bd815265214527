"""`rein refine [--policy P] FILE...`: one JSON line per file, the structural pass with no model."""
from __future__ import annotations

import json
from pathlib import Path

from middleware.cli import main

CASES = Path(__file__).parent / "data" / "refine" / "cases"
# "Your Pro plan is active with 5 seats at $29.99 per month" names no record id and no attribute the
# tool's "price" key shares: the structural pass leaves it (a model refiner may still catch it).
UNBOUND = {"fact-subscription.json"}


def test_structural_refine_prints_one_line_per_file(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"messages": []}))  # no draft
    code = main(["refine", "--policy", "structural", str(CASES / "fact-order.json"),
                 str(CASES / "clean-chat-poem.json"), str(bad)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(lines) == 3
    fixed, clean, broken = lines
    assert set(fixed) == {"file", "final", "changed", "refiners", "model_calls"}
    assert fixed["changed"] is True and "March 14" in fixed["final"] and "March 16" not in fixed["final"]
    assert fixed["refiners"] == [{"name": "factuality", "changed": True,
                                  "feedback": "fixed March 16 → March 14 (the tool result: A1234 delivery_date = 2025-03-14)"}]
    assert fixed["model_calls"] == 0
    assert clean == {"file": str(CASES / "clean-chat-poem.json"), "final": "Soft rain on the window,\nthe city hums a slower song.",
                     "changed": False, "refiners": [], "model_calls": 0}
    assert "draft" in broken["error"]


def test_structural_pass_fixes_every_fact_defect_and_no_clean_draft():
    import asyncio

    from middleware.commands.refine import load_case, refine_one
    from policies.loader import load_policy
    import refiners

    refinery = refiners.build(load_policy("structural"))
    for path in sorted(CASES.glob("*.json")):
        case = json.loads(path.read_text())
        ctx, draft = load_case(str(path))
        out = asyncio.run(refine_one(refinery, ctx, draft))
        assert out["model_calls"] == 0
        if case["expect"]["defect"] == "none":
            assert out["final"] == draft, path.name
        elif case["expect"]["defect"] == "fact" and path.name in UNBOUND:
            assert out["final"] == draft, path.name  # precision first: nothing ties the value to one fact
        elif case["expect"]["defect"] == "fact":
            assert all(s in out["final"] for s in case["expect"]["contains"]), path.name
            assert not any(s in out["final"] for s in case["expect"]["absent"]), path.name


def test_the_set_is_large_enough_and_labelled():
    kinds = [json.loads(p.read_text())["expect"]["defect"] for p in CASES.glob("*.json")]
    assert len(kinds) >= 60
    assert {"none", "fact", "constraint", "unanswered", "contradiction"} <= set(kinds)
