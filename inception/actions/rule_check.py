"""A call against its tool's rules: the records it binds, the CEL variables the rules read, each
rule judged. ``ActionChecker`` runs the built-in checks and then this.

Converting a Python value into CEL costs a few microseconds per string or map key (the library
tries bool, int, float and time before it takes a string), and is most of what a rule check
costs. So every variable is projected once per check by what all the tool's rules read of it
(``ToolPlan.reads``, worked out when the pack loads), and a variable whose value has not changed
since the last check of the same tool keeps its converted value (``cel_context``): a dialogue's
records are converted once, most often by the read ahead (``ahead``), whatever the drafts that
read them.
"""
from __future__ import annotations

import threading
from typing import Any

from inception.actions import ahead
from inception.actions.cel_context import MAX_SCOPES, CelVariables, Wanted
from inception.actions.evidence import Pieces
from inception.actions.facts import Facts
from inception.actions.plans import RuleProgram, ToolPlan
from inception.actions.records import typed_object
from inception.base import Detection
from policies.actions import ActionSettings
from policies.messages import ToolCall


MAX_VERDICTS = 4096  # verdicts kept (each keeps the records its keys name alive); emptied when full


class RuleCheck:
    def __init__(self, settings: ActionSettings):
        self.settings = settings
        used = {f for r in settings.rules for p in r.programs if p is not None for f in p.functions()}
        # a context per tool and record the read ahead fills (ahead.CANDIDATES a tool), and room
        # for the dialogues checked in between: a pack's own contexts never evict one another
        scopes = max(MAX_SCOPES, 2 * (ahead.CANDIDATES + 1) * len({r.tool for r in settings.rules}))
        self.cel = CelVariables(_extensions(used) if used else {}, scopes)
        self._ahead = threading.local()  # what the last read ahead on this thread guessed (read_ahead)
        self.pieces = Pieces()  # the evidence's parts, a record's kept
        self._verdicts: dict[tuple[int, tuple], tuple[Any, Any, list[Any]]] = {}  # (program, keys) -> verdict (verdict)

    def judge(self, call: ToolCall, tool: ToolPlan, args: dict[str, Any], facts: Facts) -> list[Detection]:
        """The rules of ``tool`` the call breaks. A ``when`` that holds makes its rule apply; a rule
        that cannot be judged (a record the dialogue never fetched) is not broken."""
        bound = self.bound(tool, args, facts)
        wanted = self.wanted(tool, call.function.arguments, bound, facts)
        context = self.cel.context(self._scope(tool, args, facts), wanted)
        out: list[Detection] = []
        said: dict[Any, list[str]] = {}  # the arguments' parts of the evidence, written once for all the rules
        for r in tool.rules:
            if (r.when is None or self.verdict(r.when, r, wanted, context) is True) \
                    and self.verdict(r.condition, r, wanted, context) is False:
                shown = self.pieces.evidence(tool.name, r, bound, tool.binds, args, said)
                out.append(Detection(type="action_violation", subtype=r.rule.id, rule=f"action:{r.rule.id}",
                                     evidence=f"{r.reason} ({shown})",
                                     hold=r.rule.on_violation == "plan", call_id=call.id, notice=r.notice))
        return out

    def _scope(self, tool: ToolPlan, args: dict[str, Any], facts: Facts) -> Any:
        """The context the call is checked in: the one the read ahead filled for the record it
        names (``ahead``), else the one of the record fetched last (any context gives the same
        verdicts: a slot's key says what it holds; this one holds the most of what the call reads)."""
        if tool.primary is None:
            return tool.name
        kind, arg = tool.primary
        value = args.get(arg)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and self.cel.holds(scope := (tool.name, str(value))):
            return scope
        return tool.name, facts.latest(kind)

    def verdict(self, program: Any, r: RuleProgram, wanted: dict[str, Wanted], context: Any) -> Any:
        """``program`` run on ``context``. A program that reads no argument gives what it gave for
        the same keys of the variables it reads (``cel_context``: a key says what value a variable
        holds; the entry keeps the objects its keys name by identity alive): the read ahead runs
        such programs on the records it guessed (``ahead``), so a call that binds them has their
        verdicts; a later draft of the dialogue, too."""
        for p, used in r.unargued:
            if p is program:
                key = tuple([wanted[v].key if v in wanted else None for v in used])
                found = self._verdicts.get((id(program), key))
                if found is not None and found[0] is program:
                    return found[1]
                verdict = _judge(program, context)
                if len(self._verdicts) >= MAX_VERDICTS:
                    self._verdicts.clear()
                self._verdicts[(id(program), key)] = (program, verdict, [wanted[v].anchor for v in used if v in wanted])
                return verdict
        return _judge(program, context)

    def read_ahead(self, tools: list[ToolPlan], facts: Facts) -> None:
        """Convert ahead of the draft what its rules will most likely read (``ahead.read_ahead``)."""
        last = self._ahead.__dict__.setdefault("last", {})
        if len(last) > 4 * self.cel.max_scopes:
            last.clear()
        ahead.read_ahead(self, tools, facts, last)

    def bound(self, tool: ToolPlan, args: dict[str, Any], facts: Facts) -> dict[str, Any]:
        """The typed arguments, every record the tool binds (None when not fetched) and "now"."""
        bound: dict[str, Any] = {"args": typed_object(args, tool.spec.arguments if tool.spec else {})}
        for bind_name, record, steps in tool.bind_steps:
            bound[bind_name] = _resolve(record, steps, bound, facts)
        if tool.reads_now:
            bound.update(_now_of(facts))
        return bound

    def wanted(self, tool: ToolPlan, arguments: str | None, bound: dict[str, Any], facts: Facts) -> dict[str, Wanted]:
        """Each variable the tool's rules read, with a key saying what its value is (``cel_context``):
        the read tree it is projected by, by identity, and what it is projected from."""
        out: dict[str, Wanted] = {}
        reads = tool.reads
        for var, read in reads.items():
            if var == "tool":
                out[var] = Wanted((var, tool.name), lambda: tool.name)
            elif var == "args":
                out[var] = Wanted((var, tool.name, arguments), lambda f=tool.projectors[var]: f(bound["args"], bound["args"]),
                                  reads, read)
            elif var in ("now", "today"):
                value = bound.get(var)
                out[var] = Wanted((var, value) if value is not None else None, lambda value=value: value)
            elif var == "last_user":
                text = facts.lowered[0]
                out[var] = Wanted((var, text), lambda text=text: text)
            elif var == "user_turns":
                turns = facts.lowered[1]
                out[var] = Wanted((var, turns), lambda turns=turns: list(turns))
            elif var == "tables":
                tables = self.settings.tables
                out[var] = Wanted((var, id(tables)), lambda: tables, tables)
            elif var in bound:
                value = bound[var]
                # a record, or a list of records, of the extraction cache: the same objects for as
                # long as the same results are in the dialogue
                held = tuple(value) if isinstance(value, list) else (value,)
                picked = tuple(str(bound["args"].get(a)) for a in tool.picks(read))  # the entries it keeps
                out[var] = Wanted((var, tuple(map(id, held)), picked),
                                  lambda value=value, f=tool.projectors[var]: f(value, bound["args"]), (reads, held), read)
        return out


def _now_of(facts: Facts) -> dict[str, Any]:
    found = facts.memo.get("now_of")  # the same facts, the same now: worked out once
    if found is None:
        now = facts.now
        found = facts.memo["now_of"] = {"now": now, "today": now.replace(hour=0, minute=0, second=0, microsecond=0)
                                        if now is not None else None}
    return found


def _extensions(used: set[str]) -> dict[str, Any]:
    """CEL's extension functions (max, lowerAscii, math.greatest ...) the pack's rules call."""
    import cel.stdlib
    found = {name: fn for lib in cel.stdlib.EXTENSIONS.values() for name, fn in lib.items() if name in used}
    same_in_c = {"lowerAscii": _ascii_case(_LOWER, cel.stdlib.lower_ascii),
                 "upperAscii": _ascii_case(_UPPER, cel.stdlib.upper_ascii)}
    return {name: same_in_c.get(name, fn) for name, fn in found.items()}


# The library's lowerAscii and upperAscii walk a name character by character in Python, on every
# call from a rule (a passenger's name, each time a rule ranges over them): for a text, str.translate
# with the same 26 letters gives the same text, in C; anything else goes to the library's own.
_LOWER, _UPPER = {c: c + 32 for c in range(65, 91)}, {c: c - 32 for c in range(97, 123)}


def _ascii_case(table: dict[int, int], library: Any) -> Any:
    def case(s: Any) -> Any:
        return s.translate(table) if type(s) is str else library(s)
    return case


def _judge(program: Any, context: Any) -> Any:
    try:
        return program.execute(context)
    except Exception:  # a record not fetched, a field absent: the rule cannot be judged
        return None


def _resolve(record: str, steps: tuple[str, ...], bound: dict[str, Any], facts: Facts) -> Any:
    """The record (or list of records) a bind names; None when the dialogue has not fetched it."""
    if len(steps) == 2:  # args.x or a bind's field: one value, walked as below without the lists
        v = bound.get(steps[0])
        v = v.get(steps[1]) if isinstance(v, dict) else None
        return facts.record(record, str(v)) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
    values, many = [bound.get(steps[0])], False
    for step in steps[1:]:
        if step == "[]":
            many = True
            values = [x for v in values if isinstance(v, list) for x in v]
        else:
            values = [v.get(step) if isinstance(v, dict) else None for v in values]
    found = [facts.record(record, str(v)) if isinstance(v, (str, int)) and not isinstance(v, bool) else None
             for v in values]
    if any(f is None for f in found) or not found:
        return None
    return found if many else found[0]
