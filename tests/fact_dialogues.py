"""A reply through rein's factuality pass after tool calls, for the precision tests of factuality:
``corrected(draft, (tool, arguments, result), ...)`` is the draft as the deterministic pass leaves it."""
from __future__ import annotations

import json

from policies.messages import parse_messages
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.factuality import deterministic_pass


def corrected(draft: str, *calls: tuple[str, dict, object], user: str = "Can you check that for me?") -> str:
    """``draft`` after the deterministic pass, the user having asked ``user`` and each (tool,
    arguments, result) having been called, in order, before it (a result not a string is sent as JSON)."""
    messages: list[dict] = [{"role": "user", "content": user}]
    for n, (name, args, result) in enumerate(calls):
        messages.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": f"c{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{n}",
                         "content": result if isinstance(result, str) else json.dumps(result)})
    fixed, _, _ = deterministic_pass(draft, Evidence.from_context(TurnContext(messages=parse_messages(messages))))
    return fixed
