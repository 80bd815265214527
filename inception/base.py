"""What the pipeline needs from inception: diagnose a dialogue, inject a plan, own some tools.

The no-op implementation here is what ``passthrough``-like policies get; the real cascade
(structural detectors, then the LLM module) is built by ``inception.build``.
"""
from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from policies.messages import AssistantMessage, Message, ToolCall


class Detection(BaseModel):
    type: str
    subtype: str | None = None
    evidence: str = ""
    confidence: float = 1.0
    source: Literal["structural", "llm"] = "structural"
    # The stable rule id (``detect:<label>``, ``action:<pack rule id>``, ``action:builtin/<check>``);
    # None means ``"detect:" + label``, what every consumer falls back to.
    rule: str | None = None
    # True when the tool call named by ``call_id`` must not reach the client as drafted.
    hold: bool = False
    call_id: str | None = None
    # What the user may be told when the call is dropped: plain words, no values (the evidence is
    # for the agent's plan and the decision log). Empty: consumers fall back to the evidence. Not
    # dumped: the JSON of a diagnosis (CLI, logs) stays what it was, the wording is derived.
    notice: str = Field("", exclude=True)

    @property
    def label(self) -> str:
        return f"{self.type}/{self.subtype}" if self.subtype else self.type

    @property
    def rule_id(self) -> str:
        """The finding's stable rule id, ``detect:<label>`` when none was set."""
        return self.rule or f"detect:{self.label}"


class Diagnosis(BaseModel):
    errors: list[Detection] = Field(default_factory=list)
    plan: str | None = None
    recovery_tools: list[str] = Field(default_factory=list)
    model_calls: int = 0
    notes: list[str] = Field(default_factory=list)  # fail-open events, e.g. "llm: timeout"

    @property
    def found(self) -> bool:
        return bool(self.errors)

    def header(self) -> str:
        """Value of ``x-rein-diagnosis``: the types found, or ``none``."""
        if not self.errors:
            return "none"
        return ",".join(dict.fromkeys(d.label for d in self.errors))


class Incident(BaseModel):
    """A failure the agent reported through a recovery tool the pack marks ``report: true``: rein
    tells the operators (log, metric, header, webhook) and words the reply by ``kind``."""
    tool: str                       # the recovery tool called, e.g. report_internal_error
    kind: str = "internal"          # not_found | rejected | unavailable | internal (inception.incidents)
    summary: str = ""               # the agent's words
    failed_tool: str | None = None  # the tool whose failed result it is about, when one is in view
    evidence: str = ""              # that result, clipped


class ToolResolution(BaseModel):
    """How rein answered a call to a tool it owns."""
    end_turn: bool
    reply: str = ""          # the assistant's text to the user when the turn ends
    tool_result: str = ""    # the tool message content when the turn continues
    incident: Incident | None = None  # the call reports a failure: the operators must hear of it


class Inception(Protocol):
    async def diagnose(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Diagnosis: ...

    def inject(self, messages: list[Message], tools: list[dict[str, Any]] | None,
               diagnosis: Diagnosis) -> tuple[list[Message], list[dict[str, Any]] | None]: ...

    def owned_tools(self, client_tools: list[dict[str, Any]] | None) -> set[str]: ...

    async def resolve(self, call: ToolCall, messages: list[Message] | None = None) -> ToolResolution:
        """Answer a call to a rein-owned tool; ``messages``, the dialogue it was made in."""
        ...

    def check_draft(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                    draft: AssistantMessage, now: str | None = None) -> Diagnosis:
        """The agent's draft tool calls: malformed ones (unknown tool, schema violation) and the
        pack's action checks (``Detection.hold``). ``now``: the request's time header, when the
        pack reads the dialogue's time from one."""
        ...

    def check_reply(self, messages: list[Message], draft: AssistantMessage) -> Diagnosis:
        """A text draft's action findings (a reply that says an action was done that no call did)."""
        ...

    def prepare(self, messages: list[Message], tools: list[dict[str, Any]] | None, now: str | None = None) -> None:
        """Read what ``check_draft`` and ``check_reply`` will read of this dialogue, before the
        draft exists: the pipeline calls it on the event loop while the agent writes (so: short,
        no waiting). Optional: without it the checks do the reading."""
        return None

    def checks_calls(self, tools: list[dict[str, Any]] | None) -> bool:
        """Whether ``check_draft`` may hold (``Detection.hold``) a call to one of ``tools``.
        A stream holds its tool-call chunks until the call is checked only when this says so,
        so a turn whose tools no action check covers streams as fast as before."""
        ...


class NoInception:
    """Diagnoses nothing, injects nothing, owns no tool."""

    async def diagnose(self, messages, tools) -> Diagnosis:
        return Diagnosis()

    def inject(self, messages, tools, diagnosis):
        return messages, tools

    def owned_tools(self, client_tools) -> set[str]:
        return set()

    async def resolve(self, call: ToolCall, messages: list[Message] | None = None) -> ToolResolution:
        raise KeyError(call.function.name)

    def check_draft(self, messages, tools, draft, now=None) -> Diagnosis:
        return Diagnosis()

    def check_reply(self, messages, draft) -> Diagnosis:
        return Diagnosis()

    def prepare(self, messages, tools, now=None) -> None:
        return None

    def checks_calls(self, tools) -> bool:
        return False
