"""Adaptive response refinement: a planner picks refiners per turn; each revises the draft."""
from __future__ import annotations

from typing import Any, Iterable

from policies import plugins
from policies.chat_model import ChatModel
from policies.schema import Policy
from refiners.base import (Check, NoRefinery, RefinePlan, Refinement, Refiner, RefinerStep, Refinery, Revision,
                           SentenceRefiner, SentenceReview, SentenceRevision, TurnContext)


def build(policy: Policy, model: ChatModel | None = None, refiners: Iterable[Any] = ()) -> Refinery:
    """The refinement stage a policy asks for (``model`` serves rein's own LLM calls): the built-in
    refiners and the plug-ins (the policy's ``plugins`` and ``refiners``), in the policy's order.
    Raises ``policies.plugins.PluginError`` for a name nothing defines."""
    extra = plugins.resolve(policy, refiners, of="refiner")
    order = plugins.refiner_order(policy, extra)  # checked even when refinement is off
    if not policy.refiners.enabled:
        return NoRefinery()
    from refiners.refinery import AdaptiveRefinery

    return AdaptiveRefinery(policy.refiners, policy.budgets, model, plugins={r.name: r for r in extra}, order=order)


__all__ = ["Check", "NoRefinery", "RefinePlan", "Refinement", "Refiner", "RefinerStep", "Refinery", "Revision",
           "SentenceRefiner", "SentenceReview", "SentenceRevision", "TurnContext", "build"]
