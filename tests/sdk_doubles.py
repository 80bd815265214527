"""Stage doubles for the SDK tests: an inception that plans on a failing tool result and a
refinery that shouts, so the tests see what each SDK surface does with a plan and a revision."""
from __future__ import annotations

from inception.base import Detection, Diagnosis, NoInception, ToolResolution
from policies.messages import AssistantMessage, FunctionCall, ToolCall, ToolMessage, text_of
from refiners.base import RefinePlan, Refinement, RefinerStep, Refinery

PLAN = "The lookup failed: say so and offer to retry."


class PlanOnToolError(NoInception):
    """Diagnoses a tool result starting with 'Error', injects a think trace, owns ``owned`` tools."""

    def __init__(self, owned: dict[str, str] | None = None):
        self.owned = owned or {}
        self.resolved: list[ToolCall] = []

    async def diagnose(self, messages, tools) -> Diagnosis:
        bad = [m for m in messages if isinstance(m, ToolMessage) and text_of(m).startswith("Error")]
        if not bad:
            return Diagnosis()
        return Diagnosis(errors=[Detection(type="tool_error", evidence=text_of(bad[-1]))], plan=PLAN,
                         recovery_tools=list(self.owned))

    def inject(self, messages, tools, diagnosis):
        think = ToolCall(id="call_think", function=FunctionCall(name="think", arguments='{"plan": "x"}'))
        injected = [*messages, AssistantMessage(content=None, tool_calls=[think]),
                    ToolMessage(tool_call_id="call_think", content=diagnosis.plan)]
        extra = [{"type": "function", "function": {"name": n, "description": "recover",
                                                   "parameters": {"type": "object", "properties": {}}}}
                 for n in diagnosis.recovery_tools]
        return injected, [*(tools or []), *extra] or None

    def owned_tools(self, client_tools) -> set[str]:
        named = {t["function"]["name"] for t in client_tools or []}
        return set(self.owned) - named

    async def resolve(self, call: ToolCall, messages=None) -> ToolResolution:
        self.resolved.append(call)
        return ToolResolution(end_turn=True, reply=self.owned[call.function.name])


class Shout(Refinery):
    """Refines every text draft to upper case (or fails, to show rein failing open)."""

    def __init__(self, fail: bool = False):
        self.fail = fail

    def may_refine(self, ctx) -> bool:
        return True

    async def plan(self, ctx, draft: str) -> RefinePlan:
        return RefinePlan(refiners=["shout"], reason="test")

    async def refine(self, ctx, draft: str, plan: RefinePlan) -> Refinement:
        if self.fail:
            raise RuntimeError("refiner down")
        return Refinement(draft=draft, final=draft.upper(),
                          steps=[RefinerStep(name="shout", changed=True, feedback="too quiet")])


def install(pipeline, inception=None, refinery=None):
    """Swap stage doubles into a compiled pipeline (nodes read them at run time)."""
    if inception is not None:
        pipeline.inception = inception
    if refinery is not None:
        pipeline.refinery = refinery
    return pipeline
