"""What the pack says about one tool, worked out once per tool name: whether a call is a write,
whether it needs a yes, the records it binds, its rules with their compiled programs, and what
those rules read of each variable. A check looks its tool up here instead of matching every glob
of the pack and reading the rules' pydantic attributes for every draft.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from inception.actions.projection import projector
from policies.actions import RESERVED, ActionRule, ActionSettings, BindSpec, ToolSpec
from policies.cel_names import ALL, SIZE, indexed_args, merge, widened

MAX_NAMES = 1024  # tool names remembered: a client may send any name, the memory stays bounded


@dataclass(frozen=True)
class RuleProgram:
    rule: ActionRule
    when: Any        # compiled CEL, or None
    condition: Any
    reads: dict[str, Any]  # what the condition reads (policies.cel_names)
    projectors: dict[str, Any] = field(default_factory=dict)  # var -> projector(reads[var], lazy): the evidence's values
    # what the evidence shows of each variable, in order: (variable, its fields sorted, or None
    # when it is shown whole); the rule's own words, as a finding carries them
    shows: tuple[tuple[str, tuple[str, ...] | None], ...] = ()
    reason: str = ""
    notice: str = ""
    picks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # var -> the arguments picking its entries
    # its programs (when, condition) that read no argument, each with the variables it reads: their
    # verdicts are a function of those variables' keys (rule_check.RuleCheck.verdict)
    unargued: tuple[tuple[Any, tuple[str, ...]], ...] = ()


# read by the rule but never shown in the evidence (long, or the same for every call)
UNSHOWN = ("tables", "user_turns", "last_user", "tool")


def rule_program(rule: ActionRule, when: Any, condition: Any) -> RuleProgram:
    reads = rule.reads("condition")
    shows = tuple((var, None if read is ALL or "[]" in read else tuple(sorted(k for k in read if k != SIZE)))
                  for var, read in reads.items() if var not in UNSHOWN)
    return RuleProgram(rule, when, condition, reads, {var: projector(read, lazy=True) for var, read in reads.items()}, shows,
                       rule.reason.strip(), " ".join(rule.reason.split()).rstrip("."),
                       {var: indexed_args(read) for var, read in reads.items()})


@dataclass
class ToolPlan:
    name: str
    spec: ToolSpec | None
    write: bool
    confirm: bool
    binds: dict[str, BindSpec] = field(default_factory=dict)
    rules: list[RuleProgram] = field(default_factory=list)
    # variable -> what the tool's rules read of it, all rules together (their whens and conditions):
    # every check projects and converts a variable once, by this one tree, whatever rules apply
    reads: dict[str, Any] = field(default_factory=dict)
    # each bind as (name, record kind, the steps of its key): "args.flights[].flight_number" is
    # ("args", "flights", "[]", "flight_number")
    bind_steps: list[tuple[str, str, tuple[str, ...]]] = field(default_factory=list)
    projectors: dict[str, Any] = field(default_factory=dict)  # variable -> rule_check.projector(reads[variable])
    holds: bool = False  # some rule is in plan mode
    reads_now: bool = False  # some rule reads now or today
    reads_turns: bool = False  # some rule reads last_user or user_turns
    guessed: tuple[str, ...] = ()  # the record kinds its binds find by one key (what a read ahead guesses)
    # (record kind, argument) of its first bind keyed by an argument: a read ahead fills one context
    # for each of the records of that kind the dialogue fetched last, the check takes the call's
    primary: tuple[str, str] | None = None
    # variable -> (its read tree with every map entry an argument picks read whole, its projector):
    # what a read ahead converts of a record before the call's arguments are known
    widened: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    _picks: dict[int, tuple[Any, tuple[str, ...]]] = field(default_factory=dict)

    def picks(self, read: Any) -> tuple[str, ...]:
        """The arguments whose values pick map entries in a read tree of this plan (cel_names.indexed_args)."""
        found = self._picks.get(id(read))
        if found is None or found[0] is not read:
            found = self._picks[id(read)] = (read, indexed_args(read))
        return found[1]


class ToolPlans:
    """``ToolPlan`` by tool name, memoized. The pack is read once; a new ``ActionSettings`` (a
    reloaded pack) gets a new ``ToolPlans``."""

    def __init__(self, settings: ActionSettings):
        self.settings = settings
        self._plans: dict[str, ToolPlan] = {}
        # write tools the pack names (not globs): what a claim in a reply may be about
        self.named_writes = {n for n, spec in settings.tools.items() if spec.write and not any(ch in n for ch in "*?[")}
        # every tool the pack names, planned now: the first draft that calls one does not pay for it
        named = {*settings.tools, *(r.tool for r in settings.rules),
                 *(src.tool for kind in settings.records.values() for src in kind.from_)}
        for name in sorted(named):
            if not any(ch in name for ch in "*?["):
                self.of(name)
        # the named tools with rules: what a read ahead converts for (ActionChecker.prepare)
        self.ruled = [plan for plan in self._plans.values() if plan.rules]

    def of(self, name: str) -> ToolPlan:
        plan = self._plans.get(name)
        if plan is None:
            if len(self._plans) >= MAX_NAMES:
                self._plans.clear()
            plan = self._plans[name] = self._build(name)
        return plan

    def is_write(self, name: str) -> bool:
        return self.of(name).write

    def _build(self, name: str) -> ToolPlan:
        s = self.settings
        spec = s.tool(name)
        plan = ToolPlan(name, spec, s.is_write(name), bool(spec and spec.confirm), (spec or ToolSpec()).binds())
        for bind_name, bind in plan.binds.items():
            first, *rest = bind.key.replace("[]", ".[]").split(".")
            plan.bind_steps.append((bind_name, bind.record, (first, *(step for step in rest if step))))
        for rule in s.rules_for(name):
            when, condition = rule.programs
            plan.rules.append(rule_program(rule, when, condition))
            for part in ("when", "condition"):
                for var, read in rule.reads(part).items():
                    plan.reads[var] = merge(plan.reads.get(var, {}), read)
            # a name the library finds in a program that cel_names did not see is set whole, so
            # that no value another draft left in the context is read in its place
            for program in (when, condition):
                for var in program.variables() if program is not None else ():
                    if (var in RESERVED or var in plan.binds) and var not in rule.uses:
                        plan.reads[var] = ALL
            plan.holds = plan.holds or rule.on_violation == "plan"
        names = set(plan.reads) | RESERVED | set(plan.binds)
        plan.rules = [replace(r, unargued=tuple((p, used) for p in (r.when, r.condition) if p is not None
                                                and "args" not in (used := tuple(sorted(set(p.variables()) & names)))))
                      for r in plan.rules]
        plan.reads_now = "now" in plan.reads or "today" in plan.reads
        plan.reads_turns = "last_user" in plan.reads or "user_turns" in plan.reads
        plan.guessed = tuple(dict.fromkeys(record for _, record, steps in plan.bind_steps if "[]" not in steps))
        plan.primary = next(((record, steps[1]) for _, record, steps in plan.bind_steps
                             if len(steps) == 2 and steps[0] == "args"), None)
        plan.projectors = {var: projector(read) for var, read in plan.reads.items()}
        plan.widened = {var: (wide, projector(wide)) for var, read in plan.reads.items()
                        if var != "args" and indexed_args(read) and (wide := widened(read)) is not None}
        return plan
