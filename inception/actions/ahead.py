"""The rule checks' read ahead: what a call's rules read, converted into CEL before the call is
drafted (``ActionChecker.prepare`` runs it while the agent writes; the check of the draft then
converts only what its arguments decide).

One CEL context per tool (``cel_context``). Tried and dropped: a context per record a call may
name (the 3 of its kind fetched last, so that a call naming an earlier reservation finds it
converted): on the airline dev set it removed the path's last record conversions, but the bench's
own loop measured no gain on the path (first-check p97 0.229 against 0.221 ms, min of 5 runs) and
a dearer read ahead (p97 0.480 against 0.396 ms).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable

from inception.actions.cel_context import EVERY, Wanted
from inception.actions.facts import Facts
from inception.actions.plans import ToolPlan

if TYPE_CHECKING:
    from inception.actions.rule_check import RuleCheck


def read_ahead(rules: "RuleCheck", tools: list[ToolPlan], facts: Facts, last: dict[Hashable, Any]) -> None:
    """Convert into each tool's context what its rules read whatever the call's arguments (now,
    today, tables, the user's turns) and the records its binds most likely find: for a bind keyed
    by one argument, the record of its kind the dialogue fetched last, and the binds that follow
    from that record; a record's map read at an argument's key with every entry (it serves any
    call's key). A call that binds another record has it converted then, as with no read ahead:
    each slot's key says which value it holds (cel_context), a guess is never read in place of
    another value. A tool is skipped when the last read ahead on this thread saw the same for it
    (``last``: tool -> what it saw)."""
    latest: dict[str, Any] = {}
    for tool in tools:
        for kind in tool.guessed:
            if kind not in latest:
                key = facts.latest(kind)
                latest[kind] = (key, facts.record(kind, key) if key is not None else None)
        _one(rules, tool, latest, facts, last)


def _one(rules: "RuleCheck", tool: ToolPlan, latest: dict[str, Any], facts: Facts, last: dict[Hashable, Any]) -> None:
    held = tuple([latest[kind][1] for kind in tool.guessed])
    seen = (tuple(map(id, held)), facts.lowered if tool.reads_turns else None, facts.now if tool.reads_now else None)
    was = last.get(tool.name)
    kept = was is not None and rules.cel.holds(tool.name)  # the context this tool's last read ahead filled
    if kept and was[0] == seen:
        return  # what this context holds is what the dialogue gives
    last[tool.name] = (seen, held)  # the records kept alive: their ids stay theirs
    guess: dict[str, Any] = {}
    if kept and was[0][0] == seen[0]:
        # the same records as last time (a new user turn): only what no bind gives is read
        bound: dict[str, Any] = {"args": {}, **(rules.now_of(facts) if tool.reads_now else {})}
    else:
        for _, record, steps in tool.bind_steps:
            if len(steps) == 2 and steps[0] == "args" and steps[1] not in guess and latest[record][0] is not None:
                guess[steps[1]] = latest[record][0]
        bound = rules.bound(tool, guess, facts)
    wanted: dict[str, Wanted] = {}
    for var, w in rules.wanted(tool, None, bound, facts).items():
        if var == "args" or w.key is None:
            continue
        if all(a in guess for a in tool.picks(w.read)):
            wanted[var] = w
        elif var in tool.widened:  # every entry an argument may pick: it serves any call's (cel_context)
            tree, cut = tool.widened[var]
            wanted[var] = Wanted((*w.key[:2], EVERY), lambda value=bound[var], cut=cut: cut(value, {}), w.anchor, tree)
    if wanted:
        try:
            context = rules.cel.context(tool.name, wanted)
        except Exception:  # a value the library cannot take: the check meets it (or not) itself
            last.pop(tool.name, None)
        else:
            for r in tool.rules:  # what the programs that read no argument give on these values
                for program, used in r.unargued:
                    if all(v in wanted for v in used):
                        rules.verdict(program, r, wanted, context)
    for r in tool.rules:  # the evidence's parts these values make, should the call break the rule
        rules.pieces.write_ahead(r, bound, tool.binds)
