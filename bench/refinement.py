"""Refinement on the project's draft set (tests/data/refine/cases): defects fixed, clean drafts left
unchanged, refiners and rein model calls per turn, and the latency refinement adds per turn —
for the deterministic factuality pass (no model), the adaptive planner with the embedded model,
and a fixed all-three chain with the same model (the baseline the planner is measured against).

    python bench/refinement.py                    # all three (embedded model: a few minutes on 2 cores)
    python bench/refinement.py --no-model         # the deterministic pass only
    python bench/refinement.py --limit 20         # a quicker, smaller sample (every 3rd case ...)
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from middleware.commands.refine import load_case  # noqa: E402
from policies.schema import Budgets, RefinerSettings  # noqa: E402
from refiners.refinery import AdaptiveRefinery  # noqa: E402

SET = ROOT / "tests" / "data" / "refine" / "cases"
DEFECTS = ("fact", "constraint", "unanswered", "contradiction")


def fixed(expect: dict, final: str) -> bool:
    low = final.lower()
    ok = all(s.lower() in low for s in expect.get("contains", []))
    ok = ok and not any(s.lower() in low for s in expect.get("absent", []))
    if expect.get("any"):
        ok = ok and any(s.lower() in low for s in expect["any"])
    if expect.get("max_words"):
        ok = ok and len(final.split()) <= expect["max_words"]
    return ok


async def run(name: str, refinery: AdaptiveRefinery, files: list[Path]) -> dict:
    rows = []
    for path in files:
        ctx, draft = load_case(str(path))
        expect = json.loads(path.read_text())["expect"]
        started = time.perf_counter()
        plan = await refinery.plan(ctx, draft)
        result = await refinery.refine(ctx, draft, plan) if plan.refiners else None
        ms = (time.perf_counter() - started) * 1000
        final = result.final if result else draft
        rows.append({"file": path.name, "defect": expect["defect"], "ms": ms,
                     "refiners": len(result.steps) if result else 0,
                     "calls": result.model_calls if result else plan.model_calls,
                     "ok": final == draft if expect["defect"] == "none" else fixed(expect, final),
                     "final": final, "plan": plan.reason,
                     "steps": [s.model_dump() for s in result.steps] if result else [],
                     "notes": result.notes if result else []})
    return {"name": name, "rows": rows}


def summarize(report: dict) -> dict:
    rows = report["rows"]
    by = Counter(r["defect"] for r in rows)
    ok = Counter(r["defect"] for r in rows if r["ok"])
    ms = sorted(r["ms"] for r in rows)
    n = len(rows)
    return {"name": report["name"], "fixed": sum(ok[d] for d in DEFECTS), "defects": sum(by[d] for d in DEFECTS),
            "per_type": {d: f"{ok[d]}/{by[d]}" for d in DEFECTS if by[d]},
            "clean": f"{ok['none']}/{by['none']}", "refiners": sum(r["refiners"] for r in rows) / n,
            "calls": sum(r["calls"] for r in rows) / n, "ms_mean": statistics.mean(ms),
            "ms_p50": ms[n // 2], "ms_p95": ms[min(n - 1, int(n * 0.95))]}


def print_table(summaries: list[dict]) -> None:
    print(f"{'configuration':44} {'defects fixed':>14} {'clean unchanged':>16} {'refiners/turn':>14} "
          f"{'model calls/turn':>17} {'added ms mean / p50 / p95':>28}")
    for s in summaries:
        print(f"{s['name']:44} {s['fixed']:>6}/{s['defects']:<7} {s['clean']:>16} {s['refiners']:>14.2f} "
              f"{s['calls']:>17.2f} {s['ms_mean']:>10.1f} / {s['ms_p50']:.1f} / {s['ms_p95']:.1f}")
    for s in summaries:
        print(f"  {s['name']}: by defect {s['per_type']}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--no-model", action="store_true", help="only the deterministic factuality pass")
    p.add_argument("--limit", type=int, default=0, help="an evenly spread sample of this many cases")
    p.add_argument("--middleware-model", default=None, help="model spec for rein's calls (default: embedded)")
    p.add_argument("--json", default=None, help="also write every case's result to this file")
    args = p.parse_args()
    files = sorted(SET.glob("*.json"))
    if args.limit and args.limit < len(files):
        step = len(files) / args.limit
        files = [files[int(i * step)] for i in range(args.limit)]
    budgets = Budgets()
    configs = [("deterministic factuality pass (no model)",
                AdaptiveRefinery(RefinerSettings(enabled=True, llm=False), budgets, None))]
    if not args.no_model:
        from middleware.models import resolve_model

        model = resolve_model(args.middleware_model)
        if getattr(model, "available", True) is False:
            print("the embedded model is not installed: run `make install`", file=sys.stderr)
            return 2
        configs += [(f"adaptive planner + {model.name}",
                     AdaptiveRefinery(RefinerSettings(enabled=True, llm=True, planner="rules"), budgets, model)),
                    (f"fixed all-three chain + {model.name}",
                     AdaptiveRefinery(RefinerSettings(enabled=True, llm=True, planner="fixed"), budgets, model))]
    print(f"{len(files)} drafts: {dict(Counter(json.loads(f.read_text())['expect']['defect'] for f in files))}; "
          f"budgets: {budgets.max_calls_per_turn} calls, {budgets.refine_wall_s:g}s wall, {budgets.model_timeout_s:g}s/call")
    reports = [asyncio.run(run(name, refinery, files)) for name, refinery in configs]
    summaries = [summarize(r) for r in reports]
    print_table(summaries)
    if len(summaries) == 3:
        adaptive, chain = summaries[1], summaries[2]
        cut = 1 - adaptive["calls"] / chain["calls"] if chain["calls"] else 0.0
        print(f"adaptive vs fixed chain: model calls/turn {adaptive['calls']:.2f} vs {chain['calls']:.2f} "
              f"({cut:.0%} fewer); defects fixed {adaptive['fixed']} vs {chain['fixed']}; clean unchanged "
              f"{adaptive['clean']} vs {chain['clean']}; added latency mean {adaptive['ms_mean']:.0f} ms vs "
              f"{chain['ms_mean']:.0f} ms ({chain['ms_mean'] / max(adaptive['ms_mean'], 1e-9):.1f}x)")
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
