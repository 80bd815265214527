"""The arms of an A/B run: ``bare`` (the agent alone), ``rein`` (the agent behind a policy's
pipeline), ``prompt`` (the same policy with the ``system_note`` strategy: the explicit
prompt-modification baseline of the ReIn paper). Example::

    arms = make_arms(["bare", "rein"], policy="default", rein_model=FunctionModel(judge))
    result = await arms[1].turn(agent_model, request)
"""
from __future__ import annotations

import contextvars
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from middleware.engine import Engine
from policies.loader import load_policy
from policies.model import ChatModel, ModelRequest, ModelResponse
from policies.schema import Policy

ARMS = ("bare", "rein", "prompt")


class TurnResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    response: ModelResponse
    agent_calls: int = 1
    rein_calls: int = 0
    diagnosis: dict[str, Any] | None = None
    refinement: dict[str, Any] | None = None
    notes: list[str] = []


class Arm(Protocol):
    name: str

    async def turn(self, agent: ChatModel, request: ModelRequest) -> TurnResult: ...


class BareArm:
    name = "bare"

    async def turn(self, agent: ChatModel, request: ModelRequest) -> TurnResult:
        return TurnResult(response=await agent.complete(request))


_trial_agent: contextvars.ContextVar[ChatModel] = contextvars.ContextVar("rein_sim_trial_agent")


class _TrialAgent:
    """Forwards to the current trial's agent, so one pipeline per arm is compiled once and shared
    by concurrent trials (each asyncio task carries its own context)."""

    name = "trial-agent"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await _trial_agent.get().complete(request)

    def stream(self, request: ModelRequest):
        return _trial_agent.get().stream(request)


class ReinArm:
    def __init__(self, name: str, policy: Policy, rein_model: ChatModel | None):
        self.name = name
        self.policy = policy
        self.engine = Engine(_TrialAgent(), policy, rein_model)

    async def turn(self, agent: ChatModel, request: ModelRequest) -> TurnResult:
        token = _trial_agent.set(agent)
        try:
            state = await self.engine.pipeline().run(request)
        finally:
            _trial_agent.reset(token)
        diagnosis, refinement = state.get("diagnosis"), state.get("refinement")
        plan = state.get("plan")
        rein_calls = sum(getattr(x, "model_calls", 0) or 0 for x in (diagnosis, refinement, plan) if x is not None)
        return TurnResult(
            response=state["final"], agent_calls=state.get("rounds", 1), rein_calls=rein_calls,
            diagnosis=diagnosis.model_dump(mode="json") if diagnosis is not None else None,
            refinement=refinement.model_dump(mode="json") if refinement is not None else None,
            notes=list(state.get("notes") or []))


def prompt_policy(policy: Policy) -> Policy:
    """The same policy, injecting plans as an explicit system note (the baseline)."""
    inception = policy.inception.model_copy(update={"strategy": "system_note"})
    return policy.model_copy(update={"inception": inception, "name": f"{policy.name}+system_note"})


def make_arms(names: list[str], policy: str | Policy = "default", rein_model: ChatModel | None = None) -> list[Arm]:
    unknown = [n for n in names if n not in ARMS]
    if unknown:
        raise ValueError(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    loaded = policy if isinstance(policy, Policy) else load_policy(policy)
    out: list[Arm] = []
    for n in names:
        if n == "bare":
            out.append(BareArm())
        elif n == "rein":
            out.append(ReinArm("rein", loaded, rein_model))
        else:
            out.append(ReinArm("prompt", prompt_policy(loaded), rein_model))
    return out
