"""One turn's budget for rein's own work: made once per turn, carried through every stage.

The policy's ``budgets`` say how much a turn may spend; this object says how much it has spent.
Diagnosis, the planner and the refiners each take what is left and record what they used, so
no stage recounts the others' calls::

    budget = TurnBudget(policy.budgets)
    budget.spend(diagnosis.model_calls)          # after diagnose
    budget.calls_left()                          # what the planner and the refiners may still use
    budget.stage_seconds("refine")               # the wall clock a stage gets before it is skipped
"""
from __future__ import annotations

from dataclasses import dataclass

from policies.schema import Budgets


@dataclass
class TurnBudget:
    budgets: Budgets
    calls_used: int = 0  # rein's own model calls this turn, every stage's

    def calls_left(self) -> int:
        return max(0, self.budgets.max_calls_per_turn - self.calls_used)

    def spend(self, calls: int) -> None:
        self.calls_used += max(0, calls)

    def stage_seconds(self, stage: str) -> float:
        """How long a stage may run before the turn goes on without it (fail open)."""
        if stage == "refine":
            return self.budgets.refine_wall_s
        return self.budgets.model_timeout_s * max(1, self.budgets.max_calls_per_turn)
