"""Rule violations per arm, from the process scores (the ``actions`` scorer): how many trials
passed by luck (the right outcome while breaking a rule) and which rules each arm broke.

    for title, note, (header, rows) in action_sections(log): ...
"""
from __future__ import annotations

from collections import Counter
from typing import Any

from sim_tests.log import RunLog, TrialRecord

Table = tuple[list[str], list[list[Any]]]


def _judged(log: RunLog) -> list[TrialRecord]:
    return [t for t in log.trials if t.status != "error" and any(s.process for s in t.scores)]


def action_sections(log: RunLog) -> list[tuple[str, str, Table]]:
    """(title, note, table) for the reports; none when no process score judged the run."""
    trials = _judged(log)
    if not trials:
        return []
    arms = list(dict.fromkeys(t.arm for t in trials))
    by_arm = {a: [t for t in trials if t.arm == a] for a in arms}
    summary = [[a, len(ts), sum(t.status == "passed" for t in ts), sum(t.lucky for t in ts),
                sum(bool(t.broken_rules) for t in ts), sum(len(t.broken_rules) for t in ts)]
               for a, ts in by_arm.items()]
    counts = {a: Counter(r for t in ts for r in t.broken_rules) for a, ts in by_arm.items()}
    trial_counts = {a: Counter(r for t in ts for r in set(t.broken_rules)) for a, ts in by_arm.items()}
    rules = sorted({r for c in counts.values() for r in c})
    per_rule = [[r] + [f"{counts[a][r]} ({trial_counts[a][r]} trials)" if counts[a][r] else "0" for a in arms]
                for r in rules]
    sections = [("Lucky passes by arm",
                 "Trials judged by the action rules; a lucky pass reached the right outcome while breaking a rule.",
                 (["arm", "trials", "passed", "lucky passes", "trials breaking a rule", "violations"], summary))]
    if rules:
        sections.append(("Rule violations by arm", "Violations of each rule (and the trials they were in), per arm.",
                         (["rule"] + arms, per_rule)))
    return sections


def lucky_trials(log: RunLog) -> list[TrialRecord]:
    return [t for t in log.trials if t.lucky]


def markdown_lines(log: RunLog) -> list[str]:
    out: list[str] = []
    for title, note, (header, rows) in action_sections(log):
        out += ["", f"## {title}", "", note, "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
        out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    lucky = lucky_trials(log)
    if lucky:
        out += ["", "## Lucky passes", ""]
        for t in lucky[:200]:
            detail = "; ".join(s.detail for s in t.scores if s.process and not s.passed)
            out.append(f"- `{t.scenario_id}` [{t.arm} #{t.trial}, {t.trait} user]: {detail}")
    return out
