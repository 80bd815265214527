"""The policy pack schema. A pack is YAML validated by these models (``extra="forbid"``).

Example (a minimal pack)::

    name: mine
    inception: {llm: false}
    taxonomy:
      - {type: tool_failure, plan: "Tell the user the lookup failed: {evidence}",
         recovery_tool: report_internal_error}
    recovery_tools:
      - {name: report_internal_error, description: Report a failure to the operators.}
"""
from __future__ import annotations

import re
import string
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from policies.action_problems import action_problems
from policies.actions import ActionSettings

from policies.rules import RULE_PATTERN, PackMode

Trigger = Literal["every_user_turn", "on_signal", "always"]
Strategy = Literal["think_trace", "prefill", "system_note"]
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"
IDENT = r"^[a-z][a-z0-9_]*$"
PLAN_FIELDS = {"evidence", "type", "subtype", "tool"}
PLUGIN_SPEC = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
# The refiners rein ships, in their default running order: facts first, then the thread, then
# the register and language (last, so it shapes the final wording). Plug-ins add their own names.
BUILTIN_REFINERS = ("factuality", "coherence", "persona")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Budgets(_Strict):
    model_timeout_s: float = Field(10.0, gt=0, description="Timeout of each rein-owned model call.")
    max_calls_per_turn: int = Field(3, ge=0, description="Most rein-owned model calls in one turn.")
    refine_wall_s: float = Field(15.0, gt=0, description="Wall-clock limit of the refinement loop.")
    max_revision_chars: int = Field(8000, gt=0, description="Longer refiner replies are rejected.")


class RecoveryTool(_Strict):
    """A recovery action the agent can call. rein adds it to the tool list when a plan names it and
    the client lacks it, and answers calls to it itself (they never reach the client)."""

    name: str = Field(pattern=TOOL_NAME)
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}},
                                       description="JSON Schema of the arguments (type: object).")
    on_call: Literal["end_turn", "continue"] = Field(
        "end_turn", description="end_turn: the reply goes to the user; continue: it is the tool result.")
    reply: str = Field("", description="Reply text; {argument} placeholders are filled from the call.")
    report: bool = Field(False, description=(
        "A call reports a failure to the operators: a warning log line (logger rein.incidents), the "
        "rein.incidents metric, the x-rein-incident header and REIN_INCIDENT_WEBHOOK when set."))
    replies: dict[Literal["not_found", "rejected", "unavailable", "internal"], str] = Field(
        default_factory=dict, description=(
            "The reply by what the dialogue's failed tool result says went wrong (not_found, rejected, "
            "unavailable, internal); `reply` for a kind not listed."))


class ErrorType(_Strict):
    """One entry of the error taxonomy: how to recognise the error and how to recover from it."""

    type: str = Field(pattern=IDENT)
    subtype: str | None = Field(None, pattern=IDENT)
    definition: str = ""
    examples: list[str] = Field(default_factory=list)
    hints: list[str] = Field(default_factory=list, description="Detection hints shown to the LLM module.")
    signals: list[str] = Field(default_factory=list, description=(
        "Regular expressions matched (case-insensitive) against the latest user message; under the "
        "on_signal trigger a match wakes the LLM module."))
    plan: str = Field("", description="Recovery plan template; {evidence}, {type}, {subtype}, {tool} are filled in.")
    recovery_tool: str | None = Field(None, description="A recovery tool this plan relies on (defined in recovery_tools).")

    @property
    def label(self) -> str:
        return f"{self.type}/{self.subtype}" if self.subtype else self.type


class InceptionSettings(_Strict):
    enabled: bool = True
    structural: bool = Field(True, description="Run the structural detectors (no model call).")
    llm: bool = Field(False, description="Run the LLM inception module (by the trigger).")
    trigger: Trigger = Field("on_signal", description=(
        "every_user_turn: once per user turn (a tool loop reuses it); on_signal: only when a signal "
        "fires and the structural detectors found nothing; always: on every request."))
    strategy: Strategy = "think_trace"
    min_confidence: float = Field(0.5, ge=0, le=1, description="LLM diagnoses below this are dropped.")
    loop_repeats: int = Field(2, ge=2, description="Identical calls with identical results that make a loop.")
    check_drafts: bool = Field(True, description="Re-ask the agent once when its tool call is malformed.")
    cache_size: int = Field(1024, ge=0, description="Diagnoses kept by conversation prefix (LRU).")
    think_tool: str = Field("think", pattern=TOOL_NAME)
    plan_from: Literal["template", "model"] = Field(
        "template", description="Use the taxonomy's plan template, or the plan the LLM module wrote.")


class RefinerSettings(_Strict):
    """Adaptive refinement (MARA): a planner picks, per turn, which refiners revise the draft."""
    enabled: bool = False
    refiners: list[Annotated[str, Field(pattern=IDENT)]] = Field(
        default_factory=lambda: list(BUILTIN_REFINERS),
        description="Refiners the planner may pick, in the order they run (with planner 'fixed', the chain): "
                    "built-in (factuality, coherence, persona) or a plug-in's name; plug-ins not named run last.")
    planner: Literal["rules", "llm", "fixed"] = Field(
        "rules", description="rules: cheap checks first, the model only when they cannot decide; llm: the model "
                             "picks among the refiners that apply; fixed: every refiner on every turn (baseline).")
    deterministic_factuality: bool = Field(
        True, description="Fix amounts, dates, IDs, names and statuses that disagree with tool results, with no model.")
    factuality_mode: Literal["rewrite", "flag"] = Field(
        "rewrite", description="rewrite: replace a value that contradicts the one fact about the same record and "
                               "attribute; flag: report it (x-rein-flagged, span) and leave the reply as written.")
    llm: bool = Field(
        False, description="Let refiners and the planner call rein's model. false: only the deterministic "
                           "factuality pass runs (no model call).")
    learn_profiles: bool = Field(
        True, description="Store what users say about themselves (name, language, constraints ...) in the "
                          "persona store; false: stored profiles are still read, nothing is written.")


class CrossFieldProblems(ValueError):
    """Problems that span fields; each carries the path of the field at fault."""

    def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems))


class Policy(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    extends: str | None = Field(None, description=(
        "A pack (shipped name, or path relative to this file) this one starts from: mappings merge, "
        "taxonomy entries replace by type/subtype, recovery tools by name, other lists are replaced."))
    inception: InceptionSettings = Field(default_factory=InceptionSettings)
    refiners: RefinerSettings = Field(default_factory=RefinerSettings)
    budgets: Budgets = Field(default_factory=Budgets)
    taxonomy: list[ErrorType] = Field(default_factory=list)
    recovery_tools: list[RecoveryTool] = Field(default_factory=list)
    shadow: bool = Field(False, description=(
        "Shadow mode: every stage runs and nothing changes (no plan planted, no reply rewritten, no call held, "
        "no stream held); what rein would have done goes to x-rein-would-* headers, spans and the decision log."))
    rules: dict[Annotated[str, Field(pattern=RULE_PATTERN)], PackMode] = Field(default_factory=dict, description=(
        "Per-rule modes by rule id or glob (detect:<type>[/<subtype>], refine:<refiner>/<kind>, action:<id>): "
        "off, act (the default), flag (report, change nothing) or shadow (record what would be done); "
        "see policies.rules."), json_schema_extra={"additionalProperties": False})
    actions: ActionSettings = Field(default_factory=ActionSettings, description=(
        "What a tool-call draft must satisfy before it reaches the client (policies/actions.py)."))
    plugins: list[Annotated[str, Field(pattern=PLUGIN_SPEC)]] = Field(default_factory=list, description=(
        "Your own detectors and refiners, as 'package.module:object' (a class is instantiated with no "
        "arguments); see policies.plugins. Checked when the policy loads."))

    @property
    def passthrough(self) -> bool:
        """True when no stage can run: the proxy then relays bytes without the pipeline."""
        return not self.inception.enabled and not self.refiners.enabled

    def error_type(self, type_: str, subtype: str | None = None) -> ErrorType | None:
        return next((e for e in self.taxonomy if e.type == type_ and e.subtype == subtype), None)

    def recovery_tool(self, name: str) -> RecoveryTool | None:
        return next((t for t in self.recovery_tools if t.name == name), None)

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        problems = _cross_field_problems(self)
        if problems:
            raise CrossFieldProblems(problems)
        return self


def _cross_field_problems(policy: Policy) -> list[tuple[tuple[str | int, ...], str]]:
    out: list[tuple[tuple[str | int, ...], str]] = []
    tools = {t.name for t in policy.recovery_tools}
    seen_tools: set[str] = set()
    for i, tool in enumerate(policy.recovery_tools):
        if tool.name in seen_tools:
            out.append((("recovery_tools", i, "name"), f"recovery tool {tool.name!r} is defined twice"))
        seen_tools.add(tool.name)
        if tool.name == policy.inception.think_tool:
            out.append((("recovery_tools", i, "name"), f"{tool.name!r} is the think tool's name"))
        if tool.parameters.get("type") != "object":
            out.append((("recovery_tools", i, "parameters", "type"), "a tool's parameters must be a JSON Schema with type: object"))
    named: set[str] = set()
    for i, name in enumerate(policy.refiners.refiners):
        if name in named:
            out.append((("refiners", "refiners", i), f"refiner {name!r} is named twice"))
        named.add(name)
    seen: set[str] = set()
    for i, err in enumerate(policy.taxonomy):
        if err.label in seen:
            out.append((("taxonomy", i), f"error type {err.label!r} is defined twice"))
        seen.add(err.label)
        if err.recovery_tool is not None and err.recovery_tool not in tools:
            out.append((("taxonomy", i, "recovery_tool"),
                        f"names recovery tool {err.recovery_tool!r}, which recovery_tools does not define"
                        + (f" (defined: {', '.join(sorted(tools))})" if tools else "")))
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(err.plan) if f is not None}
        except ValueError as e:
            out.append((("taxonomy", i, "plan"), f"bad template: {e}"))
            fields = set()
        if fields - PLAN_FIELDS:
            out.append((("taxonomy", i, "plan"), f"unknown placeholder(s) {sorted(fields - PLAN_FIELDS)}; "
                        f"allowed: {sorted(PLAN_FIELDS)}"))
        for j, pattern in enumerate(err.signals):
            try:
                re.compile(pattern)
            except re.error as e:
                out.append((("taxonomy", i, "signals", j), f"not a regular expression: {e}"))
    out += [(("actions", *loc), msg) for loc, msg in action_problems(policy.actions)]
    if policy.inception.enabled and policy.inception.llm and not policy.taxonomy:
        out.append((("inception", "llm"), "the LLM module needs a taxonomy to diagnose against"))
    return out
