"""rein's budget for its own model calls: one type, for the turn and for a stage's share of it.

The policy's ``budgets`` say how much a turn may spend; a ``TurnBudget`` says how much has been
spent. The pipeline makes one per turn and makes it current (``charging``) while the turn runs;
the wrapper around rein's own model (``middleware.models.charged.Charged``) charges every call to
the current one, so no stage recounts another's calls. A refiner loop takes a share of what is
left (``max_calls``, a ``deadline``) and reserves each call from it with ``take``::

    budget = TurnBudget(policy.budgets)
    with charging(budget):
        ...                                      # every call of rein's wrapped model: budget.calls_used += 1
    budget.calls_left()                          # what the planner and the refiners may still use
    budget.stage_seconds("refine")               # the wall clock a stage gets before it is skipped
    share = TurnBudget(max_calls=budget.calls_left(), deadline=time.monotonic() + 5, call_timeout=3, max_chars=4000)
    timeout = share.take()                       # one call reserved, or BudgetSpent
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

from policies.schema import Budgets


class BudgetSpent(Exception):
    """No model call left (count or wall clock): the caller keeps what it has."""


@dataclass
class TurnBudget:
    budgets: Budgets = field(default_factory=Budgets)
    calls_used: int = 0                 # rein's own model calls charged here
    max_calls: int | None = None        # None: the policy's max_calls_per_turn
    deadline: float = math.inf          # time.monotonic() past which no call starts
    call_timeout: float | None = None   # None: the policy's model_timeout_s
    max_chars: int | None = None        # longest revision a refiner may keep; None: the policy's

    def __post_init__(self) -> None:
        if self.max_calls is None:
            self.max_calls = self.budgets.max_calls_per_turn
        if self.call_timeout is None:
            self.call_timeout = self.budgets.model_timeout_s
        if self.max_chars is None:
            self.max_chars = self.budgets.max_revision_chars

    @property
    def calls(self) -> int:
        """Calls reserved or charged so far (a refiner's count: what it spent is the difference)."""
        return self.calls_used

    def calls_left(self) -> int:
        return max(0, self.max_calls - self.calls_used)

    def spend(self, calls: int) -> None:
        self.calls_used += max(0, calls)  # a stage that failed open spends nothing, never gives calls back

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def take(self) -> float:
        """Reserve one call of this share; the timeout it may use. Raises BudgetSpent."""
        if self.calls_used >= self.max_calls:
            raise BudgetSpent(f"model call budget spent ({self.max_calls}/turn)")
        left = self.remaining()
        if left <= 0.05:
            raise BudgetSpent("refinement wall-clock budget spent")
        self.calls_used += 1
        return min(self.call_timeout, left)

    def stage_seconds(self, stage: str) -> float:
        """How long a stage may run before the turn goes on without it (fail open)."""
        if stage == "refine":
            return self.budgets.refine_wall_s
        return self.budgets.model_timeout_s * max(1, self.budgets.max_calls_per_turn)


_CURRENT: ContextVar[TurnBudget | None] = ContextVar("rein_turn_budget", default=None)


@contextmanager
def charging(budget: TurnBudget) -> Iterator[TurnBudget]:
    """Make ``budget`` the one ``charge`` charges, in this context and the tasks started in it."""
    token = _CURRENT.set(budget)
    try:
        yield budget
    finally:
        _CURRENT.reset(token)


def charge(calls: int = 1) -> None:
    """Charge the current turn's budget (none current: a call outside a turn, charged to nothing)."""
    budget = _CURRENT.get()
    if budget is not None:
        budget.spend(calls)
