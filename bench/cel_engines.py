"""The CEL engines on PyPI on the real workload: every rule of the pack evaluated on every write
draft of the dev trajectories, with the variables rein builds for it (issue 18 asks to measure them
before picking one).

    python bench/cel_engines.py [--data PATH] [--policy PACK] [--rounds N]
    pip install cel-expr-python     # Google's binding of cel-cpp (optional third engine)
    pip install cel-python          # the pure-Python engine (optional, measured once, from scratch)

Engines: common-expression-language (Rust, ``import cel``: what rein uses), cel-expr-python
(``from cel_expr_python import cel``: C++) when importable, cel-python when importable.

Two costs per draft, CPU time of this thread (time.thread_time), the engines paired: each round
runs every engine on one draft before the next draft, in an order rotated from draft to draft.
- on the path: what the first check of a draft pays. The read ahead (``ActionChecker.prepare``)
  has converted the variables no call's arguments decide (records it guessed right, today, the
  user's turns, tables); the check converts the rest (args and what is projected by it, e.g. a
  map entry picked by an argument) and evaluates every rule of the tool. Which variables the read
  ahead holds is read from rein's own context (per tool and record) after ``prepare`` of the dialogue before the
  draft. cel-expr-python cannot add variables to an activation (it binds all of them at once, and
  converts each on its first read, once per activation), so its on-path figure converts every
  variable a rule reads; only its Python-side preparation of the held variables (times as
  protobuf Timestamps) is done ahead.
- from scratch: every variable converted, every rule evaluated.
Each draft's figure is its median over the rounds; p50 and p99 are over drafts. Verdicts ("skip":
the rule's when is false; True / False; "error": the rule cannot be judged) are compared rule by
rule with the Rust engine's.
"""
from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cel  # noqa: E402

from inception.actions import ActionChecker  # noqa: E402
from inception.actions.facts import parse_args  # noqa: E402
from policies.cel_names import covers  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from policies.messages import AssistantMessage, parse_messages  # noqa: E402

DATA = ROOT.parent / "shared/data/tau-bench-airline/dev.json"
PACK = ROOT / "examples/policies/airline.yaml"


class Case:
    """One write draft with rules: its tool's rules, every variable they read (Python values as
    rein projects them) and which of them the read ahead had already converted."""
    __slots__ = ("where", "tool", "rules", "variables", "ahead")

    def __init__(self, where: str, tool: str, rules: list[Any], variables: dict[str, Any], ahead: set[str]):
        self.where, self.tool, self.rules, self.variables, self.ahead = where, tool, rules, variables, ahead

    def split(self) -> tuple[dict[str, Any], dict[str, Any]]:
        held = {k: v for k, v in self.variables.items() if k in self.ahead}
        return held, {k: v for k, v in self.variables.items() if k not in self.ahead}


def cases(data: Path, checker: ActionChecker) -> list[Case]:
    """Every write draft of the corpus whose tool has rules, in dialogue order; the checker reads
    each dialogue ahead and updates its contexts as a check would, so what it holds before a draft
    is what rein would hold."""
    out = []
    s, rc = checker.settings, checker.rules
    for n, t in enumerate(json.loads(Path(data).read_text())["trajectories"]):
        msgs = parse_messages(t["traj"])
        for i, m in enumerate(msgs):
            if not isinstance(m, AssistantMessage) or not m.tool_calls:
                continue
            before = msgs[:i]
            checker.prepare(before)
            facts = checker.facts(before)
            for call in m.tool_calls:
                tool = checker.tools.of(call.function.name)
                args = parse_args(call.function.arguments)
                if not tool.rules or args is None or not s.is_write(call.function.name):
                    continue
                bound = rc.bound(tool, args, facts)
                wanted = {k: w for k, w in rc.wanted(tool, call.function.arguments, bound, facts).items()
                          if w.key is not None}
                scope = rc._scope(tool, args, facts)  # the context the check takes (one per tool and record)
                held = rc.cel._local.__dict__.get("held", {}).get(scope, (None, {}))[1]
                # cel_context.CelVariables.context's test of a slot that serves the wanted value
                # (args never: a draft's first check converts its arguments, the read ahead does not)
                ahead = {k for k, w in wanted.items() if k != "args" and k in held and held[k][0] == w.key
                         and (held[k][2] is w.read or covers(held[k][2], w.read))}
                out.append(Case(f"t{t.get('task_id', n)}.{t.get('trial', 0)} msg {i}", tool.name, tool.rules,
                                {k: w.make() for k, w in wanted.items()}, ahead))
                rc.cel.context(scope, wanted)  # what the check of this draft leaves held
    return out


# ---- engines: run(case, on_path, one program per tool) gives (verdicts, ms CPU) for one case ----
def verdict(when: Any, condition: Any, run: Callable[[Any], Any]) -> Any:
    try:
        if when is not None and not bool(run(when)):  # cel-python answers BoolType, not True
            return "skip"
        return bool(run(condition))
    except Exception:
        return "error"


def broken(verdicts: list[Any]) -> list[bool]:
    """Which rules the call breaks (rule_check.judge: a when that holds, a condition that is false)."""
    return [v is False for v in verdicts]


def one_program(rules: list[Any]) -> str:
    """Every rule of a tool as one CEL expression: the list of "this rule is broken". CEL's && is
    false when either side is false, even if the other is an error, so an item is true exactly when
    the when holds and the condition is false, and false when the rule is not broken; any other
    outcome (a when or condition that errs or is not a bool where it decides) makes the whole list an
    error, and then the rules are judged one by one (``judge``)."""
    return "[" + ", ".join(f"(({r.rule.when}) && !({r.rule.condition}))" if r.rule.when else f"!({r.rule.condition})"
                           for r in rules) + "]"


def judge(program: Any, rules: list[Any], run: Callable[[Any], Any], each: Callable[[], list[Any]]) -> list[bool]:
    try:
        out = run(program)
    except Exception:
        return broken(each())
    return [x is True for x in out]


class Rust:
    name = "common-expression-language (Rust)"

    def __init__(self, checker: ActionChecker):
        self.functions = checker.rules.cel.functions or None
        self.programs: dict[str, Any] = {}  # by tool: one_program

    def compile(self, texts: list[str]) -> None:
        for t in texts:
            cel.compile(t)

    def run(self, case: Case, on_path: bool, one: bool = False) -> tuple[list[Any], float]:
        held, fresh = case.split() if on_path else ({}, case.variables)
        context = cel.Context(variables=held, functions=self.functions) if on_path else None
        program = self.programs.get(case.tool) if one else None
        if one and program is None:
            program = self.programs[case.tool] = cel.compile(one_program(case.rules))
        started = time.thread_time()
        if context is None:
            context = cel.Context(variables=fresh, functions=self.functions)
        elif fresh:
            context.update(fresh)

        def each() -> list[Any]:
            return [verdict(r.when, r.condition, lambda p: p.execute(context)) for r in case.rules]
        out = judge(program, case.rules, lambda p: p.execute(context), each) if one else each()
        return out, (time.thread_time() - started) * 1000


class CelExpr:
    """cel-expr-python: variables declared dyn, the strings extension, max() as a Python function
    (CEL's standard library has none; rein's engine takes it from cel.stdlib). A datetime nested in
    a dyn value must be a protobuf Timestamp (the binding takes a datetime only where the declared
    type is timestamp), so values are walked in Python first, datetimes swapped (``ready``)."""
    name = "cel-expr-python (C++)"

    def __init__(self, rules: list[Any]):
        from cel_expr_python import cel as cx
        from cel_expr_python.ext import ext_math, ext_strings
        from google.protobuf.timestamp_pb2 import Timestamp

        self.cx, self.Timestamp, self._times = cx, Timestamp, {}
        names = {v for r in rules for v in r.uses}
        T = cx.Type
        greatest = cx.FunctionDecl("max", [
            cx.Overload("max_int_int", T.INT, [T.INT, T.INT], impl=lambda a, b: a if a >= b else b),
            cx.Overload("max_double_double", T.DOUBLE, [T.DOUBLE, T.DOUBLE], impl=lambda a, b: a if a >= b else b)])
        self.env = cx.NewEnv(variables={n: T.DYN for n in names}, functions=[greatest],
                             extensions=[ext_strings.ExtStrings(), ext_math.ExtMath()])
        self.error = T.ERROR
        self.programs: dict[Any, Any] = {}  # by rule: (when, condition); by tool: one_program

    def compile(self, texts: list[str]) -> None:
        for t in texts:
            self.env.compile(t)

    def program(self, rule: Any) -> tuple[Any, Any]:
        found = self.programs.get(id(rule.rule))
        if found is None:
            found = self.programs[id(rule.rule)] = tuple(
                self.env.compile(t) if t else None for t in (rule.rule.when, rule.rule.condition))
        return found

    def ready(self, value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            return {k: self.ready(v) for k, v in value.items()}
        if kind is list or kind is tuple:
            return [self.ready(v) for v in value]
        if kind is datetime:
            ts = self._times.get(value)
            if ts is None:
                moment = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
                seconds = (moment - EPOCH) // ONE_SECOND
                ts = self._times[value] = self.Timestamp(seconds=seconds, nanos=moment.microsecond * 1000)
            return ts
        return value

    def _eval(self, program: Any, activation: Any) -> Any:
        out = program.eval(activation)
        if out.type() == self.error:
            raise ValueError(out.value())
        return out.plain_value()  # value() gives a list's items as Values

    def run(self, case: Case, on_path: bool, one: bool = False,
            held_ready: dict[str, Any] | None = None) -> tuple[list[Any], float]:
        held, fresh = case.split() if on_path else ({}, case.variables)
        if on_path and held_ready is None:
            held_ready = {k: self.ready(v) for k, v in held.items()}  # done by the read ahead
        programs = [self.program(r) for r in case.rules]
        program = self.programs.get(case.tool) if one else None
        if one and program is None:
            program = self.programs[case.tool] = self.env.compile(one_program(case.rules))
        started = time.thread_time()
        data = {k: self.ready(v) for k, v in fresh.items()}
        if held_ready:
            data.update(held_ready)
        activation = self.env.Activation(data)

        def each() -> list[Any]:
            return [verdict(w, c, lambda p: self._eval(p, activation)) for w, c in programs]
        out = judge(program, case.rules, lambda p: self._eval(p, activation), each) if one else each()
        return out, (time.thread_time() - started) * 1000


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1, tzinfo=timezone.utc) - EPOCH


def run_celpy(work: list[Case]) -> tuple[list[Any], list[float]]:
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

    env = celpy.Environment()
    programs: dict[int, Any] = {}
    verdicts, times = [], []
    for case in work:
        for r in case.rules:
            if id(r.rule) not in programs:
                programs[id(r.rule)] = tuple(env.program(env.compile(t)) if t else None
                                             for t in (r.rule.when, r.rule.condition))
        started = time.thread_time()
        activation = {k: conv(v) for k, v in case.variables.items()}
        for r in case.rules:
            w, c = programs[id(r.rule)]
            verdicts.append(verdict(w, c, lambda p: p.evaluate(activation)))
        times.append((time.thread_time() - started) * 1000)
    return verdicts, times


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1)))] if xs else 0.0


PARTS = ("path", "scratch", "path, one program", "scratch, one program")


def measure(work: list[Case], engines: list[Any], rounds: int) -> dict[str, Any]:
    """Per engine and cost (PARTS): each draft's median ms over the rounds, and the verdicts of the
    first round (per rule from scratch; broken or not with one program per tool)."""
    times = {(e.name, part): [[] for _ in work] for e in engines for part in PARTS}
    verdicts: dict[tuple[str, str], list[Any]] = {(e.name, part): [] for e in engines for part in PARTS}
    readied = {}
    for e in engines:  # what the read ahead prepares for cel-expr-python (off the path)
        if isinstance(e, CelExpr):
            readied = {i: {k: e.ready(v) for k, v in c.split()[0].items()} for i, c in enumerate(work)}
    for rnd in range(rounds):
        gc.collect()
        gc.disable()
        try:
            for i, case in enumerate(work):
                k = (i + rnd) % len(engines)
                parts = PARTS[(i + rnd) % len(PARTS):] + PARTS[:(i + rnd) % len(PARTS)]
                for e in engines[k:] + engines[:k]:
                    for part in parts:
                        on_path, one = part.startswith("path"), part.endswith("one program")
                        if isinstance(e, CelExpr):
                            got, ms = e.run(case, on_path, one, readied.get(i) if on_path else None)
                        else:
                            got, ms = e.run(case, on_path, one)
                        times[(e.name, part)][i].append(ms)
                        if rnd == 0:
                            verdicts[(e.name, part)] += [(case.where, r.rule.id, v) for r, v in zip(case.rules, got)]
        finally:
            gc.enable()
    return {"times": {k: [statistics.median(x) for x in v] for k, v in times.items()}, "verdicts": verdicts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--policy", default=str(PACK))
    ap.add_argument("--rounds", type=int, default=7)
    a = ap.parse_args()
    policy = load_policy(a.policy)
    checker = ActionChecker(policy.actions)
    rules = policy.actions.rules
    work = cases(a.data, checker)
    print(f"{len(work)} write drafts with rules, {sum(len(c.rules) for c in work)} rule evaluations "
          f"({a.data.name}, {Path(a.policy).stem})")
    if not work:
        print("nothing to measure: the pack has no rule a write draft of this corpus meets")
        return
    engines: list[Any] = [Rust(checker)]
    try:
        engines.append(CelExpr(rules))
    except ImportError as e:
        print(f"cel-expr-python: skipped, not importable ({e}; pip install cel-expr-python)")
    texts = [t for r in rules for t in (r.when, r.condition) if t]
    for e in engines:
        started = time.thread_time()
        e.compile(texts)
        print(f"{e.name}: compile {(time.thread_time() - started) * 1000:.2f} ms CPU for {len(texts)} expressions")
    m = measure(work, engines, a.rounds)
    groups = {"every write draft": list(range(len(work)))}
    for tool in sorted({c.tool for c in work}, key=lambda t: -sum(c.tool == t for c in work))[:1]:
        groups[tool] = [i for i, c in enumerate(work) if c.tool == tool]
    for label, idx in groups.items():
        print(f"\n{label} ({len(idx)}), ms CPU per draft (median of {a.rounds} paired rounds), p50 / p99 / max; "
              f"ratios are medians of per-draft ratios, against Rust on the same cost and against rein now (Rust, path):")
        today = [m["times"][(engines[0].name, "path")][i] for i in idx]  # what rein pays now
        for part in PARTS:
            print(f"  {part}:")
            same = [m["times"][(engines[0].name, part)][i] for i in idx]
            for e in engines:
                xs = [m["times"][(e.name, part)][i] for i in idx]
                ratios = [statistics.median(b / x for b, x in zip(base, xs) if x > 0) for base in (same, today)]
                said = [f"Rust/this {ratios[0]:.2f}x"] if e is not engines[0] else []
                if part != "path":
                    said.append(f"rein now/this {ratios[1]:.2f}x")
                print(f"    {e.name:36} p50 {pct(xs, .5):.4f}  p99 {pct(xs, .99):.4f}  max {max(xs):.4f}  " + ", ".join(said))
    held = sum(len(c.ahead) for c in work)
    print(f"\nvariables held by the read ahead: {held} of {sum(len(c.variables) for c in work)}")
    ref = m["verdicts"][(engines[0].name, "scratch")]
    ref_broken = [(w, r, v is False) for w, r, v in ref]
    for e in engines:
        for part in PARTS:
            got = m["verdicts"][(e.name, part)]
            if part.endswith("one program"):
                want, what = ref_broken, "broken or not"
            else:
                want, what = ref, "verdicts"
            diff = [(x, y) for x, y in zip(want, got) if x != y]
            print(f"{e.name}, {part}: {what} = Rust's per rule: {len(want) - len(diff)} of {len(want)}")
            for x, y in diff:
                print(f"  {x[0]} {x[1]}: Rust {x[2]!r}, this {y[2]!r}")
    try:
        import celpy  # noqa: F401
    except ImportError:
        print("cel-python: not installed (pip install cel-python)")
        return
    py, py_t = run_celpy(work)
    agree = sum(x[2] == v for x, v in zip(ref, py))
    print(f"cel-python (pure Python), from scratch, unpaired: p50 {pct(py_t, .5):.3f} ms, p99 {pct(py_t, .99):.3f} ms; "
          f"verdicts = Rust's: {agree} of {len(ref)} (an error where it lacks a function, e.g. max())")


if __name__ == "__main__":
    main()
