"""Recovery tools: defined jointly with the plan, answered inside rein.

``think`` (the channel of the think_trace strategy) and the policy's recovery tools are
rein-owned whenever the client did not define a tool of that name: rein adds them to the
tool list and resolves calls to them itself, so the client never sees them.

A tool the pack marks ``report: true`` (``report_internal_error``) reports a failure: its
resolution carries an ``Incident`` (what failed, and whether the failed result says not found,
rejected, unavailable or internal) for the pipeline to hand to the operators, and the reply is the
pack's ``replies`` entry for that kind, so the user is never told "our side" about a wrong id.
"""
from __future__ import annotations

import json
import string
from typing import Any

from inception.base import ToolResolution
from inception.incidents import incident
from policies.messages import Message, ToolCall
from policies.schema import Policy, RecoveryTool

THINK_DESCRIPTION = ("Think through the situation before acting. The thought is private: it is not shown "
                     "to the user and changes nothing.")


def think_spec(name: str = "think") -> dict[str, Any]:
    return {"type": "function", "function": {
        "name": name, "description": THINK_DESCRIPTION,
        "parameters": {"type": "object", "properties": {"thought": {"type": "string"}}, "required": ["thought"]}}}


def tool_spec(tool: RecoveryTool) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool.name, "description": tool.description,
                                             "parameters": tool.parameters}}


def names_of(tools: list[dict[str, Any]] | None) -> set[str]:
    """Names of the function tools in an OpenAI tool list (entries of other shapes are skipped)."""
    out = set()
    for t in tools or []:
        fn = t.get("function") if isinstance(t, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            out.add(fn["name"])
    return out


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def render(template: str, args: dict[str, Any]) -> str:
    """Fill {argument} placeholders from the call; a missing argument becomes empty text."""
    values = _Blank({k: v if isinstance(v, str) else json.dumps(v) for k, v in args.items()})
    try:
        text = string.Formatter().vformat(template, (), values)
    except (ValueError, IndexError):
        text = template
    return " ".join(text.replace("()", "").split())


class Toolbox:
    def __init__(self, policy: Policy):
        self.policy = policy
        self.think = policy.inception.think_tool
        self.recovery = {t.name: t for t in policy.recovery_tools}
        self._all = {self.think, *self.recovery}

    def owned(self, client_tools: list[dict[str, Any]] | None) -> set[str]:
        return self.owned_of(names_of(client_tools))

    def owned_of(self, client_names: Any) -> set[str]:
        """``owned`` given the names of the client's function tools (``names_of``)."""
        return self._all - set(client_names)

    def add(self, tools: list[dict[str, Any]] | None, names: list[str]) -> list[dict[str, Any]] | None:
        """The client's tools plus those of ``names`` it lacks (None stays None when nothing is added)."""
        have = names_of(tools)
        extra = []
        for name in dict.fromkeys(names):
            if name in have:
                continue
            if name == self.think:
                extra.append(think_spec(name))
            elif name in self.recovery:
                extra.append(tool_spec(self.recovery[name]))
        if not extra:
            return tools
        return list(tools or []) + extra

    async def resolve(self, call: ToolCall, messages: list[Message] | None = None) -> ToolResolution:
        """``messages``: the dialogue the call was made in (a reporting tool reads its failed result)."""
        name = call.function.name
        try:
            args = json.loads(call.function.arguments or "{}")
        except ValueError:
            args = {}
        if not isinstance(args, dict):
            args = {}
        if name == self.think:
            return ToolResolution(end_turn=False, tool_result="Noted.")
        tool = self.recovery.get(name)
        if tool is None:
            raise KeyError(name)
        found = incident(name, args, messages) if tool.report or tool.replies else None
        template = tool.replies.get(found.kind, tool.reply) if found is not None else tool.reply
        text = render(template, args) if template else ""
        reported = found if tool.report else None
        if tool.on_call == "end_turn":
            return ToolResolution(end_turn=True, reply=text or f"({name})", incident=reported)
        return ToolResolution(end_turn=False, tool_result=text or "done", incident=reported)
