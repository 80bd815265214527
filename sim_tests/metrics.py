"""Metrics over trials: success rate, pass^k (τ²-bench), cost and latency per arm.

pass^k for one task with n trials of which c passed is C(c, k) / C(n, k): the chance that k
trials drawn without replacement all pass. It is averaged over tasks. Trials that ended in an
error (the endpoint failed, not the agent's recovery) count in neither n nor c. Example::

    pass_hat_k(n=4, c=3, k=2)   # 3/6 = 0.5
"""
from __future__ import annotations

import statistics
from collections import defaultdict
from math import comb

from pydantic import BaseModel, Field

from sim_tests.log import TrialRecord


def pass_hat_k(n: int, c: int, k: int) -> float:
    if k < 1 or k > n:
        raise ValueError(f"pass^k needs 1 <= k <= n (k={k}, n={n})")
    return comb(c, k) / comb(n, k)


def mean_pass_hat_k(counts: list[tuple[int, int]], k: int) -> float | None:
    """Average over tasks of (n, c); tasks with fewer than k verdicts are left out."""
    values = [pass_hat_k(n, c, k) for n, c in counts if n >= k]
    return sum(values) / len(values) if values else None


class Cell(BaseModel):
    """One arm × error-type cell."""
    arm: str
    label: str
    tasks: int
    trials: int
    passed: int
    errors: int
    success_rate: float | None
    pass_k: dict[int, float] = Field(default_factory=dict)


class ArmCost(BaseModel):
    arm: str
    trials: int
    agent_calls_per_trial: float
    rein_calls_per_trial: float
    tokens_per_trial: float
    turn_latency_ms_p50: float | None
    turn_latency_ms_p95: float | None
    trial_seconds_mean: float | None


def _cell(arm: str, label: str, trials: list[TrialRecord], max_k: int) -> Cell:
    per_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    errors = 0
    for t in trials:
        if t.status == "error":
            errors += 1
            continue
        per_task[t.scenario_id][0] += 1
        per_task[t.scenario_id][1] += t.status == "passed"
    counts = [(n, c) for n, c in per_task.values()]
    judged = sum(n for n, _ in counts)
    passed = sum(c for _, c in counts)
    pass_k = {}
    for k in range(1, max_k + 1):
        value = mean_pass_hat_k(counts, k)
        if value is not None:
            pass_k[k] = value
    return Cell(arm=arm, label=label, tasks=len({t.scenario_id for t in trials}), trials=len(trials),
                passed=passed, errors=errors, success_rate=passed / judged if judged else None,
                pass_k=pass_k)


def table(trials: list[TrialRecord], max_k: int | None = None) -> list[Cell]:
    """Cells for every arm × error type, plus an ``all`` row per arm."""
    max_k = max_k or max((t.trial for t in trials), default=0) + 1
    groups: dict[tuple[str, str], list[TrialRecord]] = defaultdict(list)
    for t in trials:
        groups[(t.arm, t.label)].append(t)
        groups[(t.arm, "all")].append(t)
    order = _label_order(trials)
    arms = list(dict.fromkeys(t.arm for t in trials))
    return [_cell(a, lab, groups[(a, lab)], max_k) for a in arms for lab in order + ["all"] if groups.get((a, lab))]


def _label_order(trials: list[TrialRecord]) -> list[str]:
    labels = list(dict.fromkeys(t.label for t in trials))
    return sorted(labels, key=lambda lab: (lab != "clean", labels.index(lab)))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 1)


def costs(trials: list[TrialRecord]) -> list[ArmCost]:
    out = []
    for arm in dict.fromkeys(t.arm for t in trials):
        ts = [t for t in trials if t.arm == arm]
        latencies = [turn.latency_ms for t in ts for turn in t.turns]
        n = len(ts)
        out.append(ArmCost(
            arm=arm, trials=n, agent_calls_per_trial=round(sum(t.agent_calls for t in ts) / n, 3),
            rein_calls_per_trial=round(sum(t.rein_calls for t in ts) / n, 3),
            tokens_per_trial=round(sum(t.tokens for t in ts) / n, 1),
            turn_latency_ms_p50=_pct(latencies, 0.5), turn_latency_ms_p95=_pct(latencies, 0.95),
            trial_seconds_mean=round(statistics.fmean(t.duration_s for t in ts), 3) if ts else None))
    return out
