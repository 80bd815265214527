"""Reasoning inception: detect dialogue errors and plant a recovery plan in the agent's reasoning."""
from __future__ import annotations

from inception.base import Detection, Diagnosis, Inception, NoInception, ToolResolution
from inception.cascade import Cascade
from typing import Any, Iterable

from policies import plugins
from policies.chat_model import ChatModel
from policies.schema import Policy


def build(policy: Policy, model: ChatModel | None = None, detectors: Iterable[Any] = ()) -> Inception:
    """The inception stage a policy asks for (``model`` serves rein's own LLM calls), with the
    plug-in detectors (the policy's ``plugins`` and ``detectors``) after the built-in ones.
    Raises ``policies.plugins.PluginError`` for a detector whose types nobody defines."""
    extra = plugins.resolve(policy, detectors, of="detector")
    policy = plugins.with_taxonomy(policy, extra)  # checked even when inception is off
    if not policy.inception.enabled:
        return NoInception()
    return Cascade(policy, model, extra)


__all__ = ["Cascade", "Detection", "Diagnosis", "Inception", "NoInception", "ToolResolution", "build"]
