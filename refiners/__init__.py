"""Adaptive response refinement: a planner picks refiners per turn; each revises the draft."""
from __future__ import annotations

from policies.model import ChatModel
from policies.schema import Policy
from refiners.base import (Check, NoRefinery, RefinePlan, Refinement, Refiner, RefinerStep, Refinery, Revision,
                           TurnContext)


def build(policy: Policy, model: ChatModel | None = None) -> Refinery:
    """The refinement stage a policy asks for (``model`` serves rein's own LLM calls)."""
    if not policy.refiners.enabled:
        return NoRefinery()
    from refiners.refinery import AdaptiveRefinery

    return AdaptiveRefinery(policy.refiners, policy.budgets, model)


__all__ = ["Check", "NoRefinery", "RefinePlan", "Refinement", "Refiner", "RefinerStep", "Refinery", "Revision",
           "TurnContext", "build"]
