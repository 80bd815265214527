"""The LLM inception module: one model call that reads the visible context, the tool list and the
policy's error→recovery map, and answers ``none`` or a typed diagnosis.

It asks for schema-constrained JSON (``response_format`` json_schema; the embedded model turns it
into a grammar) and parses whatever comes back defensively: a reply that is not a diagnosis is
``none`` plus a note, never an exception.
"""
from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from inception.base import Detection
from inception.dialogue import Dialogue, clip as _clip
from inception.memo import TextMemo
from policies.messages import AssistantMessage, SystemMessage, ToolMessage, UserMessage, text_of
from policies.chat_model import ChatModel, ModelError, ModelRequest
from policies.schema import Policy

MAX_MESSAGES = 14       # the tail of the dialogue the module reads
MAX_CHARS = 500         # per message: a small model drowns in long tool dumps
UNGROUNDED = 0.4        # confidence factor when the evidence is not a quote from the dialogue


@dataclass
class LLMVerdict:
    detections: list[Detection] = field(default_factory=list)
    plan: str | None = None
    calls: int = 0
    notes: list[str] = field(default_factory=list)


def reply_schema(labels: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "error": {"type": "string", "enum": ["none", *labels]},
        "evidence": {"type": "string", "maxLength": 200},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "plan": {"type": "string", "maxLength": 400}},
        "required": ["error", "evidence", "confidence", "plan"]}



def render_dialogue(d: Dialogue) -> str:
    lines = []
    for m in d.messages[-MAX_MESSAGES:]:
        if isinstance(m, SystemMessage):
            lines.append(f"[system] {_clipped(text_of(m))}")
        elif isinstance(m, UserMessage):
            lines.append(f"[user] {_clipped(text_of(m))}")
        elif isinstance(m, AssistantMessage):
            calls = "; ".join(f"{c.function.name}({_clip(c.function.arguments or '', 160)})" for c in m.tool_calls or [])
            text = _clipped(text_of(m))
            lines.append(f"[agent] {text}{' ' if text and calls else ''}{'calls ' + calls if calls else ''}")
        elif isinstance(m, ToolMessage):
            lines.append(f"[tool result] {_clipped(text_of(m))}")
    return "\n".join(lines)


# A message is in the prompt of every ask while it is among the last MAX_MESSAGES: clipped once.
_CLIPPED: TextMemo[str] = TextMemo(1_000_000)


def _clipped(text: str) -> str:
    return _CLIPPED.get(text, _clip_message)


def _clip_message(text: str) -> str:
    return _clip(text, MAX_CHARS)


def render_tools(d: Dialogue) -> str:
    if not d.tools:
        return "(no tools)"
    out = []
    for name, spec in d.tools.items():
        params = ", ".join((spec.get("parameters") or {}).get("properties", {}) or {})
        out.append(f"- {name}({params}): {_clip(spec.get('description', ''), 140)}")
    return "\n".join(out)


def render_map(policy: Policy) -> str:
    out = []
    for e in policy.taxonomy:
        hints = f" Hints: {'; '.join(e.hints)}." if e.hints else ""
        tool = f" Recovery tool: {e.recovery_tool}." if e.recovery_tool else ""
        out.append(f"- {e.label}: {e.definition}{hints} Recovery: {e.plan.replace('{evidence}', '...')}{tool}")
    return "\n".join(out)


def build_prompt(policy: Policy, d: Dialogue, errors: str | None = None) -> list[Any]:
    """``errors``: ``render_map(policy)`` when the caller keeps it (it is the same every turn)."""
    system = (
        "You check a dialogue between a user and a tool-using agent, before the agent answers, for "
        "one of these errors. Answer 'none' unless the dialogue clearly shows one.\n"
        f"Errors and their recovery:\n{render_map(policy) if errors is None else errors}\n\n"
        'Reply with JSON only: {"error": "none" or one error name above, "evidence": a short quote '
        'from the dialogue, "confidence": 0 to 1, "plan": one or two sentences the agent should follow}.')
    user = f"Tools the agent has:\n{render_tools(d)}\n\nDialogue:\n{render_dialogue(d)}\n\nWhich error, if any?"
    return [SystemMessage(content=system), UserMessage(content=user)]


def parse_reply(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` (code fences and chatter around it tolerated)."""
    text = re.sub(r"```(?:json)?", "", text or "")
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
            if isinstance(obj, dict):
                return obj
        except ValueError:
            pass
        start = text.find("{", start + 1)
    found = re.search(r'"?error"?\s*[:=]\s*"?([a-z_/]+)', text, re.I)
    return {"error": found.group(1)} if found else None


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


class LLMDetector:
    """Example::

        verdict = await LLMDetector(policy, model).diagnose(Dialogue.of(messages, tools))
        verdict.detections   # [] for none
    """

    def __init__(self, policy: Policy, model: ChatModel):
        self.policy = policy
        self.model = model
        self.labels = [e.label for e in policy.taxonomy]
        self.constrained = True   # turned off once a model refuses response_format
        self.errors = render_map(policy)  # the prompt's error map: the policy's, the same every turn

    def _label(self, obj: dict[str, Any]) -> str | None:
        raw = str(obj.get("error") or obj.get("type") or obj.get("error_type") or "none").strip().lower()
        raw = raw.replace(" ", "_").replace(".", "/")
        if obj.get("subtype") and "/" not in raw:
            raw = f"{raw}/{str(obj['subtype']).strip().lower()}"
        if raw in ("none", "null", "no", "no_error", ""):
            return None
        if raw in self.labels:
            return raw
        # A bare subtype ("polysemy") or a type with a single subtype names one entry.
        named = [lab for lab in self.labels if lab.endswith("/" + raw) or lab.split("/")[0] == raw]
        return named[0] if len(named) == 1 else raw

    async def diagnose(self, d: Dialogue) -> LLMVerdict:
        verdict = LLMVerdict()
        budget = self.policy.budgets
        request = ModelRequest(messages=build_prompt(self.policy, d, self.errors), timeout=budget.model_timeout_s,
                               extra={"temperature": 0, "max_tokens": 200})
        if self.constrained:
            request.response_format = {"type": "json_schema",
                                       "json_schema": {"name": "diagnosis", "schema": reply_schema(self.labels)}}
        try:
            verdict.calls += 1
            reply = await asyncio.wait_for(self.model.complete(request), budget.model_timeout_s)
        except asyncio.TimeoutError:
            verdict.notes.append(f"llm: over budget ({budget.model_timeout_s:g}s)")
            return verdict
        except ModelError as e:
            if e.status == 400 and self.constrained:
                self.constrained = False  # this model takes no response_format: parse its prose next time
            verdict.notes.append(f"llm: {e.message[:120]}")
            return verdict
        obj = parse_reply(text_of(reply.message))
        if obj is None:
            verdict.notes.append("llm: reply is not JSON; treated as none")
            return verdict
        label = self._label(obj)
        if label is None:
            return verdict
        if label not in self.labels:
            verdict.notes.append(f"llm: unknown error type {label!r}; treated as none")
            return verdict
        evidence = _clip(str(obj.get("evidence") or ""), 200)
        try:
            confidence = min(1.0, max(0.0, float(obj.get("confidence", 0.5))))
        except (TypeError, ValueError):
            confidence = 0.5
        # Evidence must be quoted from the dialogue: a claim that quotes nothing counts for little
        # (small models fill the field with the label itself).
        if not _norm(evidence) or _norm(evidence) not in _norm(render_dialogue(d)):
            confidence *= UNGROUNDED
        if confidence < self.policy.inception.min_confidence:
            return verdict
        type_, _, subtype = label.partition("/")
        verdict.detections.append(Detection(type=type_, subtype=subtype or None, evidence=evidence,
                                            confidence=round(confidence, 3), source="llm"))
        plan = str(obj.get("plan") or "").strip()
        verdict.plan = plan or None
        return verdict
