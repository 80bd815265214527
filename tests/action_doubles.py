"""An action check for tests, standing in for the pack's action rules: the structural cascade
(so a plan is planted by the policy's own injection) plus a rule on one named tool.

    inception = HoldCalls(load_policy("structural"), tool="cancel_reservation")
    install(engine.pipeline(), inception=inception)
"""
from __future__ import annotations

import json

from inception.base import Detection, Diagnosis
from inception.cascade import Cascade
from policies.schema import Policy

RULE = "action:test/cancel_eligible"
REASON = "the reservation was booked more than 24 hours ago and has no insurance"


class HoldCalls(Cascade):
    """Holds every call to ``tool`` whose arguments lack ``"allowed": true``, with rule ``RULE``;
    ``hold=False`` reports it only (a rule in flag mode)."""

    def __init__(self, policy: Policy, tool: str = "cancel_reservation", hold: bool = True):
        super().__init__(policy)
        self.tool, self.hold = tool, hold
        self.checked = 0

    def check_draft(self, messages, tools, draft, now=None) -> Diagnosis:
        base = super().check_draft(messages, tools, draft, now)
        self.checked += 1
        found = [Detection(type="action_violation", subtype="cancel_eligible", evidence=REASON, rule=RULE,
                           hold=self.hold, call_id=c.id)
                 for c in draft.tool_calls or [] if c.function.name == self.tool and not _allowed(c)]
        if not found:
            return base
        plan = f"Do not call {self.tool}: {REASON}. Tell the user it cannot be cancelled."
        return base.model_copy(update={"errors": [*base.errors, *found], "plan": base.plan or plan})

    def checks_calls(self, tools) -> bool:
        return any((t.get("function") or t).get("name") == self.tool for t in tools or [])


def _allowed(call) -> bool:
    try:
        return json.loads(call.function.arguments or "{}").get("allowed") is True
    except ValueError:
        return False
