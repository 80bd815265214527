"""Metrics by user trait: success, pass^k, satisfaction and the user side's lexical metrics per
arm × trait, and how often rein still diagnoses a failure when the user has a trait.

The diagnosis rate pairs each trait variant of a failure scenario with its cooperative version
(same source scenario, arm and trial): it counts the pairs where rein's diagnosis of the variant
holds every error type it found in the cooperative dialogue. Example::

    for cell in trait_table(log.trials): cell.arm, cell.trait, cell.success_rate, cell.satisfaction
    diagnosis_rates(log.trials)   # [DiagnosisRate(arm="rein", trait="informal", matched=7, pairs=8), ...]
"""
from __future__ import annotations

import statistics
from collections import defaultdict

from pydantic import BaseModel, Field

from sim_tests.lexical import UserSide, transcript_turns, user_side
from sim_tests.log import TrialRecord
from sim_tests.metrics import mean_pass_hat_k
from sim_tests.traits import base_id

COOPERATIVE = "cooperative"


class TraitCell(BaseModel):
    arm: str
    trait: str
    trials: int
    passed: int
    errors: int
    gave_up: int
    success_rate: float | None
    pass_k: dict[int, float] = Field(default_factory=dict)
    satisfaction: float | None = Field(None, description="Mean satisfaction by rules, 1-5")
    judge_satisfaction: float | None = Field(None, description="Mean satisfaction by the judge model, 1-5")
    judged: int = 0
    user_side: UserSide


def _mean(values: list[int]) -> float | None:
    return round(statistics.fmean(values), 2) if values else None


def _cell(arm: str, trait: str, trials: list[TrialRecord], max_k: int) -> TraitCell:
    judged = [t for t in trials if t.status != "error"]
    per_task: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in judged:
        per_task[t.scenario_id][0] += 1
        per_task[t.scenario_id][1] += t.status == "passed"
    counts = list(map(tuple, per_task.values()))
    pass_k = {k: v for k in range(1, max_k + 1) if (v := mean_pass_hat_k(counts, k)) is not None}
    passed = sum(t.status == "passed" for t in judged)
    rules = [s.score for t in judged for s in t.satisfaction if s.source == "rules"]
    judge = [s.score for t in judged for s in t.satisfaction if s.source == "judge"]
    return TraitCell(arm=arm, trait=trait, trials=len(trials), passed=passed, errors=len(trials) - len(judged),
                     gave_up=sum(t.ended_by == "gave_up" for t in judged),
                     success_rate=passed / len(judged) if judged else None, pass_k=pass_k,
                     satisfaction=_mean(rules), judge_satisfaction=_mean(judge), judged=len(judge),
                     user_side=user_side(transcript_turns(t.messages) for t in judged))


def trait_order(trials: list[TrialRecord]) -> list[str]:
    traits = list(dict.fromkeys(t.trait for t in trials))
    return sorted(traits, key=lambda x: (x != COOPERATIVE, traits.index(x)))


def trait_table(trials: list[TrialRecord], max_k: int | None = None) -> list[TraitCell]:
    """One cell per arm × trait (``cooperative`` first), in the run's order."""
    max_k = max_k or max((t.trial for t in trials), default=0) + 1
    groups: dict[tuple[str, str], list[TrialRecord]] = defaultdict(list)
    for t in trials:
        groups[(t.arm, t.trait)].append(t)
    arms = list(dict.fromkeys(t.arm for t in trials))
    return [_cell(a, tr, groups[(a, tr)], max_k) for a in arms for tr in trait_order(trials) if groups.get((a, tr))]


def diagnosed(t: TrialRecord) -> set[str]:
    """The error types rein's diagnosis found in any turn of the trial."""
    return {e.get("type", "?") for turn in t.turns for e in (turn.diagnosis or {}).get("errors") or []}


class DiagnosisRate(BaseModel):
    arm: str
    trait: str
    pairs: int = Field(description="Failure scenarios whose cooperative version rein diagnosed")
    matched: int = Field(description="Of those, variants diagnosed with the same error types")
    rate: float | None


def diagnosis_rates(trials: list[TrialRecord]) -> list[DiagnosisRate]:
    """Per arm that diagnoses and per trait: the share of failure scenarios rein still diagnoses
    as it did with the cooperative user. The ``cooperative`` row's pairs are failure trials with
    any diagnosis, out of all failure trials (how often rein diagnoses at all)."""
    coop = {(t.scenario_id, t.arm, t.trial): t for t in trials if t.trait == COOPERATIVE and t.status != "error"}
    out = []
    arms = [a for a in dict.fromkeys(t.arm for t in trials) if any(turn.diagnosis for t in trials
                                                                    if t.arm == a for turn in t.turns)]
    for arm in arms:
        failing = [t for t in coop.values() if t.arm == arm and t.label != "clean"]
        hit = sum(bool(diagnosed(t)) for t in failing)
        out.append(DiagnosisRate(arm=arm, trait=COOPERATIVE, pairs=len(failing), matched=hit,
                                 rate=hit / len(failing) if failing else None))
        for trait in trait_order(trials):
            if trait == COOPERATIVE:
                continue
            pairs = matched = 0
            for t in trials:
                if t.arm != arm or t.trait != trait or t.label == "clean" or t.status == "error":
                    continue
                base = coop.get((base_id(t.scenario_id), arm, t.trial))
                if base is None or not diagnosed(base):
                    continue
                pairs += 1
                matched += diagnosed(base) <= diagnosed(t)
            out.append(DiagnosisRate(arm=arm, trait=trait, pairs=pairs, matched=matched,
                                     rate=matched / pairs if pairs else None))
    return out
