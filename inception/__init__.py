"""Reasoning inception: detect dialogue errors and plant a recovery plan in the agent's reasoning."""
from __future__ import annotations

from inception.base import Detection, Diagnosis, Inception, NoInception, ToolResolution
from inception.cascade import Cascade
from policies.model import ChatModel
from policies.schema import Policy


def build(policy: Policy, model: ChatModel | None = None) -> Inception:
    """The inception stage a policy asks for (``model`` serves rein's own LLM calls)."""
    if not policy.inception.enabled:
        return NoInception()
    return Cascade(policy, model)


__all__ = ["Cascade", "Detection", "Diagnosis", "Inception", "NoInception", "ToolResolution", "build"]
