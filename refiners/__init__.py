"""Adaptive response refinement: a planner picks refiners per turn; each revises the draft."""
from __future__ import annotations

from policies.model import ChatModel
from policies.schema import Policy
from refiners.base import NoRefinery, RefinePlan, Refinement, RefinerStep, Refinery, TurnContext


def build(policy: Policy, model: ChatModel | None = None) -> Refinery:
    """The refinement stage a policy asks for (``model`` serves rein's own LLM calls)."""
    return NoRefinery()


__all__ = ["NoRefinery", "RefinePlan", "Refinement", "RefinerStep", "Refinery", "TurnContext", "build"]
