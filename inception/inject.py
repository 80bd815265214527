"""Injection strategies: where the recovery plan goes in what the agent reads.

- ``think_trace``: a synthetic assistant call to the ``think`` tool carrying the plan, and its
  result, appended at the end: the agent reads it as its own latest thought (lowest level of the
  instruction hierarchy; the system prompt is untouched).
- ``prefill``: an assistant message that starts the reply, for providers that continue it.
- ``system_note``: the plan appended to the system prompt (explicit prompt modification: the
  paper's baseline, kept for A/B runs).
"""
from __future__ import annotations

import hashlib
import json

from policies.messages import (AssistantMessage, FunctionCall, Message, SystemMessage, ToolCall, ToolMessage,
                               assistant, text_of)

NOTE_HEADER = "Recovery note (from rein):"


def _call_id(plan: str) -> str:
    # Stable across the requests of one tool loop, so the dialogue the agent sees stays a prefix.
    return "rein_think_" + hashlib.blake2b(plan.encode(), digest_size=6).hexdigest()


def think_trace(messages: list[Message], plan: str, think_tool: str = "think") -> list[Message]:
    call_id = _call_id(plan)
    call = ToolCall(id=call_id, type="function",
                    function=FunctionCall(name=think_tool, arguments=json.dumps({"thought": plan})))
    return [*messages, assistant(None, [call]), ToolMessage(tool_call_id=call_id, content="Noted.")]


def prefill(messages: list[Message], plan: str) -> list[Message]:
    return [*messages, AssistantMessage(content=f"(Thinking before I answer: {plan})\n\n")]


def system_note(messages: list[Message], plan: str) -> list[Message]:
    note = f"{NOTE_HEADER} {plan}"
    for i, m in enumerate(messages):
        if isinstance(m, SystemMessage):
            content = text_of(m)
            return [*messages[:i], m.model_copy(update={"content": f"{content}\n\n{note}" if content else note}),
                    *messages[i + 1:]]
    return [SystemMessage(content=note), *messages]


STRATEGIES = {"think_trace": think_trace, "prefill": prefill, "system_note": system_note}
