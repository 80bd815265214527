"""Does factuality still catch what it should, on real replies? Seed contradictions and count.

Every real agent reply in the corpus that states a value equal to a tool fact of the record it
names (a flight's departure time, a price, a reservation's date) gets that one value changed to a
wrong one; the deterministic factuality pass then reads the seeded reply. Printed: seeded values
caught (flagged), caught and restored to the tool's value, and rewritten to anything else (a wrong
fix). The untouched replies are the real-dialogue bench's business (bench/real_dialogues.py).

    python bench/seeded_facts.py [--data PATH ...] [--verbose]   # default: every corpus under ../shared/data/
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from policies.messages import AssistantMessage, parse_messages, text_of  # noqa: E402
from refiners.base import TurnContext  # noqa: E402
from refiners.claims import find_claims, render  # noqa: E402
from refiners.evidence import Evidence  # noqa: E402
from refiners.factuality import Checker, deterministic_pass  # noqa: E402
from real_corpora import corpora, corpus_name, table  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tau-bench-airline" / "dev.json"
KINDS = ("money", "time", "date")


SHIFTS = (1, 2, 3, 5, 7)  # tried in turn: the first wrong value the dialogue does not hold is seeded


def wrong(kind: str, value: Any, step: int = 1) -> Any:
    """A value no arithmetic on the dialogue's amounts is likely to give, of the same type."""
    if kind == "money":
        return value + Decimal("37") * step
    if kind == "time":
        return ((value[0] + 3 * step) % 24, value[1])
    year, month, day = value
    moved = dt.date(year or 2024, month, day) + dt.timedelta(days=9 * step)
    return (year and moved.year, moved.month, moved.day)


def fresh_wrong(claim: Any, evidence: Evidence) -> Any:
    """A wrong value that nobody in the dialogue stated and that does not follow from its amounts: a
    value someone said (another flight's time, an earlier quote) may be the one the reply means, and
    rein leaves such values alone by design. None when every shift gives one."""
    for step in SHIFTS:
        value = wrong(claim.kind, claim.value, step)
        if evidence.seen(replace(claim, value=value)):
            continue
        if claim.kind == "money" and evidence.derivable(value):
            continue
        return value
    return None


def seeds(text: str, evidence: Evidence) -> list[tuple[Any, str, str]]:
    """(claim, seeded text, original value text) for values bound to one tool fact of a named record."""
    out = []
    checker = Checker(text, evidence)
    for claim in find_claims(text, KINDS):
        s, e = checker.sentences.bounds(claim.start, claim.end)
        named = checker._entities(text[s:claim.start] + " " + text[claim.end:e]) or checker._heading(s)
        if not named:
            continue
        facts = [f for f in evidence.about(named) if f.kind == claim.kind and f.source == "tool"
                 and f.value == claim.value]
        if not facts:
            continue
        new_value = fresh_wrong(claim, evidence)
        if new_value is None:
            continue
        seeded_text = render(claim, new_value, claim.kind)
        out.append((claim, text[:claim.start] + seeded_text + text[claim.end:], claim.text))
    return out


def measure(path: Path = DATA) -> dict[str, Any]:
    data = json.loads(path.read_text())
    counts: Counter[str] = Counter()
    missed: list[str] = []
    wrong_fixes: list[str] = []
    for traj in data["trajectories"]:
        messages = parse_messages(traj["traj"])
        for i, m in enumerate(messages):
            if not isinstance(m, AssistantMessage) or not text_of(m) or m.tool_calls:
                continue
            evidence = Evidence.from_context(TurnContext(messages=messages[:i], tools=data.get("tools")))
            for claim, seeded, original in seeds(text_of(m), evidence):
                counts["seeded"] += 1
                counts[f"seeded {claim.kind}"] += 1
                fixed_text, found, _ = deterministic_pass(seeded, evidence)
                if not found:
                    missed.append(f"t{traj['task_id']}.{traj['trial']} msg {i} {claim.kind} {original}")
                    continue
                counts["caught"] += 1
                counts[f"caught {claim.kind}"] += 1
                if [(c.kind, c.value) for c in find_claims(fixed_text)] == [(c.kind, c.value) for c in find_claims(text_of(m))]:
                    counts["restored"] += 1
                else:
                    counts["wrong fix"] += 1
                    wrong_fixes.append(f"t{traj['task_id']}.{traj['trial']} msg {i}: {'; '.join(found)}")
    return {"counts": counts, "missed": missed, "wrong_fixes": wrong_fixes}


def show(name: str, out: dict[str, Any], verbose: bool) -> None:
    c = out["counts"]
    n = c["seeded"] or 1
    print(f"== {name}: seeded contradictions in real replies: {c['seeded']}")
    for kind in KINDS:
        print(f"  {kind:6} caught {c[f'caught {kind}']}/{c[f'seeded {kind}']}")
    print(f"caught {c['caught']}/{c['seeded']} ({c['caught'] / n:.0%}); restored to the tool's value "
          f"{c['restored']}; rewritten to anything else {c['wrong fix']}")
    if verbose:
        for line in out["missed"][:40]:
            print("  missed", line)
    for line in out["wrong_fixes"]:
        print("  wrong fix", line)


def summary(rows: list[tuple[str, Counter]]) -> str:
    total: Counter[str] = Counter()
    for _, c in rows:
        total.update(c)
    frac = lambda c, k: f"{c[f'caught {k}']}/{c[f'seeded {k}']}"  # noqa: E731
    return table(rows + [("total", total)], [
        ("seeded", "", lambda c: str(c["seeded"])),
        *((k, "", lambda c, k=k: frac(c, k)) for k in KINDS),
        ("caught", ">= 70%", lambda c: f"{c['caught']}/{c['seeded']} ({c['caught'] / (c['seeded'] or 1):.0%})"),
        ("wrongly restored", "0", lambda c: str(c["wrong fix"])),
    ])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, action="append", help="a corpus (repeatable; default: every dev.json under ../shared/data/)")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    paths = args.data or corpora()
    missing = [x for x in paths if not x.exists()] or ([] if paths else ["../shared/data/*/dev.json"])
    if missing:
        print(f"{missing[0]} not found: pass --data", file=sys.stderr)
        return 2
    rows = []
    for path in paths:
        out = measure(path)
        show(corpus_name(path), out, args.verbose)
        rows.append((corpus_name(path), out["counts"]))
    print("\n== per corpus")
    print(summary(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
