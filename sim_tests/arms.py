"""The arms of an A/B run: ``bare`` (the agent alone), ``rein`` (the agent behind a policy's
pipeline), ``prompt`` (the same policy with the ``system_note`` strategy: the explicit
prompt-modification baseline of the ReIn paper).

An arm sits where a user deploys rein: in front of the agent's model. For an agent whose tool
calls the harness runs, that model is the whole agent turn (``arm.turn``). An agent that runs its
own tool loop gets its model wrapped (``arm.wrap_model``), so rein sees every model call of the
loop, with the tool results in it, and ``inside_turn`` gathers what the arm did in one agent run.
Example::

    arms = make_arms(["bare", "rein"], policy="default", rein_model=FunctionModel(judge))
    result = await arms[1].turn(agent_model, request)                  # rein around one turn
    model = ReferenceAgent(my_model).bind(env, wrap=arms[1].wrap_model)  # rein in front of its model
    result = await inside_turn(model, request)                         # one run of its tool loop
"""
from __future__ import annotations

import contextvars
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from middleware.adapters.isolation import outside_caller_run
from middleware.engine import Engine
from middleware.models.chunks import response_chunks
from middleware.state import rein_model_calls
from policies.loader import load_policy
from policies.chat_model import ChatModel, ModelRequest, ModelResponse
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

    @classmethod
    def of_calls(cls, response: ModelResponse, calls: list["TurnResult"]) -> "TurnResult":
        """One agent run that made several model calls, each through the arm: counts add up, the
        diagnoses merge (errors found by any call), the refinement is the last one (the final reply's)."""
        diagnoses = [c.diagnosis for c in calls if c.diagnosis is not None]
        refinement = next((c.refinement for c in reversed(calls) if c.refinement is not None), None)
        return cls(response=response, agent_calls=sum(c.agent_calls for c in calls) or 1,
                   rein_calls=sum(c.rein_calls for c in calls), diagnosis=_merged(diagnoses) if diagnoses else None,
                   refinement=refinement, notes=[n for c in calls for n in c.notes])


def _merged(diagnoses: list[dict[str, Any]]) -> dict[str, Any]:
    errors: dict[tuple, dict[str, Any]] = {}
    for d in diagnoses:
        for e in d.get("errors") or []:
            errors.setdefault((e.get("type"), e.get("subtype"), e.get("evidence")), e)
    return {**diagnoses[-1], "errors": list(errors.values()),
            "plan": next((d["plan"] for d in diagnoses if d.get("plan")), None),
            "recovery_tools": list(dict.fromkeys(t for d in diagnoses for t in d.get("recovery_tools") or [])),
            "model_calls": sum(d.get("model_calls") or 0 for d in diagnoses),
            "notes": [n for d in diagnoses for n in d.get("notes") or []]}


class Arm(Protocol):
    name: str

    async def turn(self, agent: ChatModel, request: ModelRequest) -> TurnResult:
        """One call of ``agent`` (a model or a whole agent turn) through the arm."""
        ...

    def wrap_model(self, model: ChatModel) -> ChatModel:
        """``model`` with the arm in front of it, for an agent that runs its own tool loop."""
        ...


_model_calls: contextvars.ContextVar[list[TurnResult] | None] = contextvars.ContextVar(
    "rein_sim_model_calls", default=None)


class ArmModel:
    """A model behind an arm: each call is one ``arm.turn``, recorded for ``inside_turn``."""

    def __init__(self, arm: "Arm", model: ChatModel):
        self.arm, self.model = arm, model
        self.name = getattr(model, "name", "model")

    async def complete(self, request: ModelRequest) -> ModelResponse:
        result = await self.arm.turn(self.model, request)
        calls = _model_calls.get()
        if calls is not None:
            calls.append(result)
        return result.response

    async def stream(self, request: ModelRequest):
        for c in response_chunks(await self.complete(request)):
            yield c


async def inside_turn(agent: ChatModel, request: ModelRequest) -> TurnResult:
    """One run of a self-running agent whose model is an ``ArmModel``: what the arm did on each of
    its model calls, added up for the turn."""
    calls: list[TurnResult] = []
    token = _model_calls.set(calls)
    try:
        response = await agent.complete(request)
    finally:
        _model_calls.reset(token)
    return TurnResult.of_calls(response, calls)


class BareArm:
    name = "bare"

    async def turn(self, agent: ChatModel, request: ModelRequest) -> TurnResult:
        return TurnResult(response=await agent.complete(request))

    def wrap_model(self, model: ChatModel) -> ChatModel:
        return ArmModel(self, model)  # a pass-through that counts the agent's model calls


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
            # Outside any LangGraph run around the model (an agent's loop): the pipeline is its own graph.
            state = await outside_caller_run(lambda: self.engine.pipeline().run(request))
        finally:
            _trial_agent.reset(token)
        diagnosis, refinement = state.get("diagnosis"), state.get("refinement")
        return TurnResult(
            response=state["final"], agent_calls=state.get("rounds", 1), rein_calls=rein_model_calls(state),
            diagnosis=diagnosis.model_dump(mode="json") if diagnosis is not None else None,
            refinement=refinement.model_dump(mode="json") if refinement is not None else None,
            notes=list(state.get("notes") or []))

    def wrap_model(self, model: ChatModel) -> ChatModel:
        return ArmModel(self, model)


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
