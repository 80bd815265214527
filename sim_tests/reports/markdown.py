"""The Markdown summary: success per arm × error type, pass^k, cost and latency per arm."""
from __future__ import annotations

from sim_tests.log import RunLog
from sim_tests.metrics import Cell, costs, table
from sim_tests.reports.actions import markdown_lines as action_lines
from sim_tests.reports.traits import markdown_lines
from sim_tests.trait_metrics import trait_table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def _grid(cells: list[Cell]) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    arms = list(dict.fromkeys(c.arm for c in cells))
    labels = list(dict.fromkeys(c.label for c in cells))
    return arms, labels, {(c.arm, c.label): c for c in cells}


def text_table(log: RunLog) -> str:
    """Arm × error type success rates as a fixed-width table (what `make sim` prints)."""
    arms, labels, by = _grid(table(log.trials))
    width = max([len(lab) for lab in labels] + [10])
    lines = ["error type".ljust(width) + "".join(a.rjust(10) for a in arms)]
    for lab in labels:
        row = lab.ljust(width)
        for a in arms:
            c = by.get((a, lab))
            cell = "" if c is None else f"{c.passed}/{c.trials - c.errors}" + (f"+{c.errors}e" if c.errors else "")
            row += cell.rjust(10)
        lines.append(row)
    traits = trait_table(log.trials)
    if len({c.trait for c in traits}) > 1:  # the same grid by the kind of user, with satisfaction
        by_trait = {(c.arm, c.trait): c for c in traits}
        names = list(dict.fromkeys(c.trait for c in traits))
        width = max([len(n) for n in names] + [10])
        lines += ["", "user trait".ljust(width) + "".join(f"{a} (sat)".rjust(16) for a in arms)]
        for name in names:
            row = name.ljust(width)
            for a in arms:
                c = by_trait.get((a, name))
                row += ("" if c is None else f"{c.passed}/{c.trials - c.errors} ({c.satisfaction})").rjust(16)
            lines.append(row)
    return "\n".join(lines)


def _scorer(name: str, args: dict) -> str:
    return f"`{name}`" + (f" ({', '.join(f'{k}={v!r}' for k, v in args.items())})" if args else "")


def render_markdown(log: RunLog) -> str:
    cells = table(log.trials)
    arms, labels, by = _grid(cells)
    cfg = log.config
    out = [f"# rein sim: {cfg.suite}", "",
           f"Agent `{cfg.agent}`, {cfg.user} user, arms {', '.join(cfg.arms)}, policy `{cfg.policy}`, "
           f"{cfg.trials} trial(s) per scenario, {len(log.trials)} trials ({log.status}).", "",
           *([f"Stopped: {log.stopped_because}.", ""] if log.stopped_because else []),
           *([f"Scorers: {', '.join(_scorer(s.name, s.args) for s in log.scorers)}.", ""] if log.scorers else []),
           "## Success rate by arm and error type", "",
           "| error type | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for lab in labels:
        row = []
        for a in arms:
            c = by.get((a, lab))
            row.append("" if c is None else f"{_pct(c.success_rate)} ({c.passed}/{c.trials - c.errors})"
                       + (f", {c.errors} error" if c.errors else ""))
        out.append(f"| {lab} | " + " | ".join(row) + " |")
    ks = sorted({k for c in cells for k in c.pass_k})
    if ks:
        out += ["", "## pass^k (all error types)", "", "| arm | " + " | ".join(f"k={k}" for k in ks) + " |",
                "|---|" + "---|" * len(ks)]
        for a in arms:
            c = by.get((a, "all"))
            out.append(f"| {a} | " + " | ".join(f"{c.pass_k[k]:.3f}" if c and k in c.pass_k else "–" for k in ks) + " |")
    out += ["", "## Cost and latency per arm", "",
            "| arm | trials | agent calls/trial | rein calls/trial | tokens/trial | turn p50 ms | turn p95 ms | trial s |",
            "|---|---|---|---|---|---|---|---|"]
    for c in costs(log.trials):
        out.append(f"| {c.arm} | {c.trials} | {c.agent_calls_per_trial} | {c.rein_calls_per_trial} | "
                   f"{c.tokens_per_trial} | {c.turn_latency_ms_p50} | {c.turn_latency_ms_p95} | {c.trial_seconds_mean} |")
    out += markdown_lines(log)
    out += action_lines(log)
    failed = [t for t in log.trials if t.status != "passed"]
    if failed:
        out += ["", "## Failures and errors", ""]
        for t in failed[:200]:
            out.append(f"- `{t.scenario_id}` [{t.arm} #{t.trial}, {t.trait} user] **{t.status}**: {t.reason}")
    return "\n".join(out) + "\n"
