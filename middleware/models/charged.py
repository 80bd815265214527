"""rein's own model, charged to the turn's budget: the wrapper the stage builder puts around it.

``Instrumented`` owns the ``chat`` span of every call; ``Charged`` is that and one more thing:
each call of rein's own model (diagnosis, planner, refiners) counts once against the turn's budget
that the pipeline made current (``policies.budget.charging``), so no stage adds up its calls. The
agent is only ``Instrumented``: its calls are not rein's::

    own = Charged.wrap(rein_model)
    with charging(TurnBudget(policy.budgets)) as budget:
        await own.complete(request)            # budget.calls_used == 1, one span "chat {model}"
"""
from __future__ import annotations

from typing import Any, AsyncIterator

from middleware.models.instrumented import Instrumented
from policies.budget import charge
from policies.chat_model import ChatModel, ModelRequest, ModelResponse


class Charged(Instrumented):
    @classmethod
    def wrap(cls, model: ChatModel | None) -> Any:
        """``model`` wrapped once (None stays None; an Instrumented model is charged from now on)."""
        if model is None or isinstance(model, Charged):
            return model
        return cls(model.model if isinstance(model, Instrumented) else model)

    async def complete(self, request: ModelRequest) -> ModelResponse:
        charge()  # an attempt counts, answered or not: the budget bounds what rein asks
        return await super().complete(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        charge()
        async for chunk in super().stream(request):
            yield chunk
