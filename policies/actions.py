"""The ``actions:`` section of a policy pack: what a tool-call draft must satisfy before it reaches
the client. Rules are CEL expressions (https://cel.dev), compiled once when the pack loads.

Example (a pack's section)::

    actions:
      records:
        order:
          from: [{tool: get_order, key: args.order_id}]
          fields: {status: {type: enum, values: [pending, shipped]}, placed_at: datetime, total: money}
      tools:
        cancel_order: {write: true, confirm: true, bind: {order: args.order_id}}
      rules:
        - id: not_shipped
          tool: cancel_order
          condition: order.status == "pending"
          reason: A shipped order cannot be cancelled.

A rule holds for a call when ``condition`` is true (``when``, if given, says when the rule applies).
A rule that cannot be judged (a record the dialogue never fetched) is skipped: rein holds a call
only on evidence. What a name in a rule may be is checked here, with the pack's YAML line.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from policies.cel_names import merge

FieldType = Literal["string", "int", "number", "money", "bool", "date", "datetime", "enum", "list", "map", "any"]
BuiltinMode = Literal["plan", "flag", "off"]
IDENT = r"^[a-z][a-z0-9_]*$"
# Names every rule may use; a bind may not take one of them.
RESERVED = {"args", "now", "today", "last_user", "user_turns", "tables", "tool"}
# Precision first: a built-in check holds by default only when a wrong hold would need something
# an honest dialogue does not do. untrusted_argument holds a write only for a value found nowhere
# but inside the instructions a tool result carried (a flagged passage: issue 23); on the dev
# corpora every one of its holds sends a value of the planted attack and none falls on a dialogue
# without attack (bench/real_actions.py with the AgentDojo labels; bench/injections.py). The others
# judge what honest dialogues do too (a write with no literal "yes", an id read off a record, a
# retry, a summary) and only report, unless a pack turns them to plan for its tools;
# unconfirmed_write applies only to the tools a pack marks confirm: true.
BUILTIN_MODES = {"unconfirmed_write": "plan", "unknown_id": "flag", "repeated_failed_write": "flag", "claimed_action": "flag",
                 "untrusted_argument": "plan"}
BUILTINS = tuple(BUILTIN_MODES)
# A reply to "shall I go ahead?" that says yes. Operators of other languages set their own.
CONFIRMATION = (r"\b(?:yes|yeah|yep|yup|sure|ok(?:ay)?|confirm(?:ed)?|proceed|go\s+ahead|please\s+do|do\s+it"
                r"|that(?:'s|\s+is)?\s+(?:fine|correct|right|good|great|perfect)|sounds\s+good|correct|absolutely"
                r"|of\s+course|let'?s\s+do|i\s+agree|agreed|works\s+for\s+me)\b")
# A tool whose name starts with one of these verbs changes something (when the pack does not say).
WRITE_VERBS = (r"^(?:send|create|update|delete|remove|cancel|book|pay|transfer|schedule|add|set|change|modify"
               r"|post|write|reserve|refund|purchase|buy|order|submit|approve|invite|share|move|rename|upload"
               r"|edit|insert|append|reschedule|issue|grant|revoke|close|open_account|exchange|return)(?:_|$)")
# A tool whose name starts with one of these verbs only reads (when the pack does not say). A tool
# named by neither list may have changed something: a reply saying an action was done is not
# flagged after it succeeded (refuel_data, request_renewal).
READ_VERBS = (r"^(?:get|search|list|find|lookup|look_up|fetch|read|show|view|query|calculate|compute|count"
              r"|check|verify|validate|describe|retrieve|think|browse|download|estimate|preview|quote)(?:_|$)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldSpec(_Strict):
    """A field of a record (or of the items of a list field), typed on the way in."""
    type: FieldType = "any"
    values: list[str] = Field(default_factory=list, description="enum: the values a rule may compare with.")
    items: dict[str, Union[FieldType, "FieldSpec"]] = Field(
        default_factory=dict, description="list: the fields of its items (objects).")


class RecordSource(_Strict):
    tool: str = Field(description="The tool whose successful results hold the record.")
    items: str = Field("", description="Where the records are in the result: '' the result itself, "
                                       "'[]' each element (each value of a map), 'items.[]' each element of its items.")
    key: str = Field(description="What identifies a record: args.<argument> of the call, or a field of the record.")
    arguments: list[str] = Field(default_factory=list, description=(
        "Fields a successful call sets from its arguments of the same name (a write whose result does "
        "not show the new value yet)."))


class RecordKind(_Strict):
    from_: list[RecordSource] = Field(alias="from", min_length=1)
    fields: dict[str, Union[FieldType, FieldSpec]] = Field(
        default_factory=dict, description="The fields rules may read (empty: any field, untyped).")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class BindSpec(_Strict):
    record: str
    key: str = Field(description="args.<argument> or <earlier bind>.<field>; a [] step makes a list of records.")


class ToolSpec(_Strict):
    write: bool = Field(True, description="The call changes something (a consequential write).")
    confirm: bool = Field(False, description="The user must say yes, in the turn right before, to this call.")
    bind: dict[str, Union[str, BindSpec]] = Field(default_factory=dict, description=(
        "Names rules may use for records this call is about: name: args.<argument> (the record kind "
        "called name), or {record: kind, key: path}."))
    arguments: dict[str, Union[FieldType, FieldSpec]] = Field(
        default_factory=dict, description="The call's arguments, typed (empty: any argument, untyped).")

    def binds(self) -> dict[str, BindSpec]:
        return {n: b if isinstance(b, BindSpec) else BindSpec(record=n, key=b) for n, b in self.bind.items()}


class NowSource(_Strict):
    """Where the dialogue's "now" comes from; the first source that gives one wins."""
    header: str | None = Field(None, description="A request header the proxy or SDK passes in.")
    system_prompt: str | None = Field(None, description="A regular expression; its first group is the time.")
    tool: str | None = Field(None, description="The latest successful result of this tool ...")
    field: str | None = Field(None, description="... at this field (none: the whole result is the time).")
    value: str | None = Field(None, description="A fixed time (tests, replays).")


class ActionRule(_Strict):
    id: str = Field(pattern=IDENT)
    tool: str = Field(description="A tool name or a glob pattern (update_*).")
    when: str | None = Field(None, description="CEL: the rule applies only when this is true.")
    condition: str = Field(description="CEL: what a call must satisfy.")
    reason: str = Field(min_length=1, description="Shown to the agent in the plan when the call is held.")
    on_violation: Literal["plan", "flag"] = Field(
        "plan", description="plan: hold the call and re-ask the agent with a plan; flag: report only.")
    _programs: tuple[Any, Any] | None = PrivateAttr(None)
    _reads: dict[str, dict[str, Any]] = PrivateAttr(default_factory=dict)

    @property
    def programs(self) -> tuple[Any, Any]:
        """(when or None, condition), compiled when the pack loaded."""
        if self._programs is None:
            self._programs = (compile_cel(self.when) if self.when else None, compile_cel(self.condition))
        return self._programs

    @property
    def uses(self) -> dict[str, Any]:
        """Variable -> what the rule reads of it (a read tree, see policies.cel_names): what the engine builds."""
        out: dict[str, Any] = {}
        for reads in self._reads.values():
            for var, read in reads.items():
                out[var] = merge(out.get(var, {}), read)
        return out

    def reads(self, part: str) -> dict[str, Any]:
        """What ``when`` or ``condition`` alone reads: the engine judges ``when`` first, with only that."""
        return self._reads.get(part, {})


class ActionSettings(_Strict):
    enabled: bool = True
    max_rounds: int = Field(2, ge=0, description="Re-asks of the agent before a held call is dropped.")
    now: list[NowSource] = Field(default_factory=list)
    confirmation: str = Field(CONFIRMATION, description="Regex (case-insensitive): the user said yes.")
    infer_writes: bool = Field(True, description="A tool the pack does not list is a write when its name "
                                                 "starts with a write verb (send_, update_, cancel_ ...).")
    builtins: dict[str, BuiltinMode] = Field(default_factory=lambda: dict(BUILTIN_MODES), description=(
        "Each built-in check's mode; a check not named keeps its default."))
    records: dict[str, RecordKind] = Field(default_factory=dict)
    tables: dict[str, Any] = Field(default_factory=dict, description="Small lookup tables rules read as tables.<name>.")
    tools: dict[str, ToolSpec] = Field(default_factory=dict, description="By tool name or glob pattern.")
    rules: list[ActionRule] = Field(default_factory=list)
    _write_verbs: re.Pattern[str] = PrivateAttr(default_factory=lambda: re.compile(WRITE_VERBS, re.I))
    _read_verbs: re.Pattern[str] = PrivateAttr(default_factory=lambda: re.compile(READ_VERBS, re.I))

    @field_validator("builtins", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        # YAML reads a bare off / on as false / true
        if isinstance(value, dict):
            return {**BUILTIN_MODES, **{k: ("off" if v is False else "plan" if v is True else v) for k, v in value.items()}}
        return value

    def tool(self, name: str) -> ToolSpec | None:
        """The pack's entry for a tool: its own, else the first glob that matches."""
        spec = self.tools.get(name)
        if spec is None:
            spec = next((s for p, s in self.tools.items() if is_glob(p) and fnmatch.fnmatchcase(name, p)), None)
        return spec

    def is_write(self, name: str) -> bool:
        spec = self.tool(name)
        if spec is not None:
            return spec.write
        return self.infer_writes and self._write_verbs.search(name) is not None

    def may_write(self, name: str) -> bool:
        """A write, or a tool nothing says only reads: neither the pack nor its name (READ_VERBS)."""
        spec = self.tool(name)
        if spec is not None:
            return spec.write
        return self._write_verbs.search(name) is not None or self._read_verbs.search(name) is None

    def rules_for(self, name: str) -> list[ActionRule]:
        return [r for r in self.rules if r.tool == name or (is_glob(r.tool) and fnmatch.fnmatchcase(name, r.tool))]


def compile_cel(text: str) -> Any:
    """A compiled CEL program. The library is imported here, not with this module: ``import cel``
    also imports its command line's dependencies (about a third of a second), which a pack with no
    rule, and every worker process that serves one, should not pay."""
    import cel
    return cel.compile(text)


def is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


FieldSpec.model_rebuild()
