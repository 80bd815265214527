"""Harness throughput: scripted user + scripted agent, so the harness itself is what is timed.

Prints scenarios per second for the bare dialogue loop (baseline: run_trial in a plain loop, no
runner), and for the runner at concurrency 1 and 32 (with its JSONL/run.json output), plus the
`rein` arm (structural policy: LangGraph pipeline, no model calls by rein) at concurrency 32,
and the `realistic` suite (users with behaviour traits, satisfaction by rules) at concurrency 32.
Target: >= 1,000 scenarios/s with scripted parts (the bare runner rows).

    .venv/bin/python bench/sim_throughput.py [--trials 4]
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path

from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.trial import run_trial
from sim_tests.log import RunConfig
from sim_tests.runner import Runner
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
from sim_tests.scorers import expected_db_hash
from sim_tests.users import ScriptedUser


def suite() -> Suite:
    scenarios = load_suite("retail").scenarios + load_suite("travel").scenarios
    return Suite(name="retail+travel", scenarios=scenarios)


async def baseline(s: Suite, trials: int) -> float:
    arm, agent = make_arms(["bare"])[0], ScriptedAgent()
    hashes = {x.id: expected_db_hash(x) for x in s.scenarios}
    started = time.perf_counter()
    for k in range(trials):
        for x in s.scenarios:
            await run_trial(x, arm, agent, ScriptedUser(x), k, expected_hash=hashes[x.id])
    return len(s.scenarios) * trials / (time.perf_counter() - started)


async def runner(s: Suite, trials: int, concurrency: int, arm: str = "bare") -> float:
    """Scenarios per second through the runner (with its JSONL and run.json output)."""
    with tempfile.TemporaryDirectory() as out:
        config = RunConfig(suite=s.name, agent="scripted", arms=[arm], policy="structural", trials=trials,
                           concurrency=concurrency)
        started = time.perf_counter()
        log = await Runner(s, ScriptedAgent(), make_arms([arm], "structural"), config, out_dir=Path(out),
                           progress=None).run()
        elapsed = time.perf_counter() - started
    assert len(log.trials) == len(s.scenarios) * trials and not any(t.status == "error" for t in log.trials)
    return len(log.trials) / elapsed


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=4)
    args = p.parse_args()
    s = suite()
    await runner(s, 1, 8)  # warm-up: imports, pydantic schemas, LangGraph compile
    gc.freeze()  # as `rein sim run` does: the collector leaves the long-lived import heap alone
    n = len(s.scenarios) * args.trials
    print(f"{len(s.scenarios)} scenarios x {args.trials} trials = {n} dialogues per measurement "
          f"(python {sys.version.split()[0]})")
    base = await baseline(s, args.trials)
    rows = [("baseline: run_trial loop, bare", base)]
    rows.append(("runner, bare, concurrency 1", await runner(s, args.trials, 1)))
    rows.append(("runner, bare, concurrency 32", await runner(s, args.trials, 32)))
    rows.append(("runner, rein (structural), concurrency 32", await runner(s, args.trials, 32, "rein")))
    rows.append(("runner, bare, realistic (traits), conc. 32", await runner(load_suite("realistic"), args.trials, 32)))
    for name, rate in rows:
        print(f"  {name:44} {rate:8.1f} scenarios/s   {rate / base:5.2f}x baseline")
    worst = min(rate for name, rate in [*rows[1:3], rows[4]])
    print(f"target >= 1,000 scenarios/s with scripted parts: {'met' if worst >= 1000 else 'NOT met'} "
          f"(worst bare runner row {worst:.1f}/s)")


if __name__ == "__main__":
    asyncio.run(main())
