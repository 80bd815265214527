"""The two CEL engines on PyPI on the real workload: every rule of the airline pack evaluated on every
write draft of the dev trajectories, with the variables rein builds for it (issue 18 asks to
measure both before picking one).

    pip install cel-python          # the pure-Python engine; rein itself depends only on the Rust one
    python bench/cel_engines.py [--data PATH] [--policy PACK]

Prints, per engine: the time to compile the pack's expressions, the time per draft (variables
converted once, every rule of the tool evaluated) p50/p99, and whether both engines agree on every
verdict.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cel  # noqa: E402

from inception.actions import ActionChecker  # noqa: E402
from inception.actions.facts import gather, parse_args  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from policies.messages import AssistantMessage, parse_messages  # noqa: E402

DATA = ROOT.parent / "shared/data/tau-bench-airline/dev.json"
PACK = ROOT / "examples/policies/airline.yaml"


def cases(data: Path, checker: ActionChecker) -> list[tuple[list[Any], dict[str, Any]]]:
    """(rules, variables) for every write draft that has rules."""
    out = []
    s = checker.settings
    for t in json.loads(Path(data).read_text())["trajectories"]:
        msgs = parse_messages(t["traj"])
        for i, m in enumerate(msgs):
            if not isinstance(m, AssistantMessage) or not m.tool_calls:
                continue
            for call in m.tool_calls:
                rules = s.rules_for(call.function.name)
                args = parse_args(call.function.arguments)
                if not rules or args is None:
                    continue
                facts = gather(msgs[:i], s, checker.extractor)
                out.append((rules, checker.variables(call, facts)))
    return out


def run_rust(work, functions) -> tuple[list[Any], list[float]]:
    verdicts, times = [], []
    for rules, variables in work:
        started = time.perf_counter()
        ctx = cel.Context(variables=variables, functions=functions or None)
        for r in rules:
            verdicts.append(_safe(lambda: _verdict(r.programs, lambda p: p.execute(ctx))))
        times.append((time.perf_counter() - started) * 1000)
    return verdicts, times


def run_celpy(work, programs) -> tuple[list[Any], list[float]]:
    import celpy
    from celpy import celtypes

    def conv(o):
        if isinstance(o, datetime):
            return celtypes.TimestampType(o)
        if isinstance(o, dict):
            return celtypes.MapType({celtypes.StringType(k): conv(v) for k, v in o.items()})
        if isinstance(o, list):
            return celtypes.ListType([conv(v) for v in o])
        return celpy.json_to_cel(o)

    verdicts, times = [], []
    for rules, variables in work:
        started = time.perf_counter()
        activation = {k: conv(v) for k, v in variables.items()}
        for r in rules:
            verdicts.append(_safe(lambda: _verdict(programs[id(r)], lambda p: p.evaluate(activation))))
        times.append((time.perf_counter() - started) * 1000)
    return verdicts, times


def _verdict(programs, run) -> Any:
    when, condition = programs
    if when is not None and not bool(run(when)):  # cel-python answers BoolType, not True
        return "skip"
    return bool(run(condition))


def _safe(fn) -> Any:
    try:
        return fn()
    except Exception:
        return "error"


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))] if xs else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--policy", default=str(PACK))
    a = ap.parse_args()
    policy = load_policy(a.policy)
    checker = ActionChecker(policy.actions)
    rules = policy.actions.rules
    texts = [t for r in rules for t in (r.when, r.condition) if t]
    started = time.perf_counter()
    for t in texts:
        cel.compile(t)
    rust_compile = (time.perf_counter() - started) * 1000
    work = cases(a.data, checker)
    rust, rust_t = run_rust(work, checker.rules.cel.functions)
    print(f"{len(work)} write drafts with rules, {sum(len(r) for r, _ in work)} rule evaluations")
    print(f"common-expression-language (Rust): compile {rust_compile:.1f} ms for {len(texts)} expressions; "
          f"per draft p50 {pct(rust_t, .5):.3f} ms, p99 {pct(rust_t, .99):.3f} ms")
    try:
        import celpy
    except ImportError:
        print("cel-python: not installed (pip install cel-python)")
        return
    env = celpy.Environment()
    started = time.perf_counter()
    programs = {id(r): tuple(env.program(env.compile(t)) if t else None for t in (r.when, r.condition)) for r in rules}
    py_compile = (time.perf_counter() - started) * 1000
    py, py_t = run_celpy(work, programs)
    agree = sum(x == y for x, y in zip(rust, py))
    print(f"cel-python (pure Python):          compile {py_compile:.1f} ms; "
          f"per draft p50 {pct(py_t, .5):.3f} ms, p99 {pct(py_t, .99):.3f} ms")
    print(f"verdicts agree: {agree} of {len(rust)} (an error where one engine lacks a function, e.g. "
          f"cel-python has no max())")


if __name__ == "__main__":
    main()
