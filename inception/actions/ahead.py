"""The rule checks' read ahead: what a call's rules read, converted into CEL before the call is
drafted (``ActionChecker.prepare`` runs it while the agent writes; the check of the draft then
converts only what its arguments decide).

A tool whose binds start from an argument (``reservation: args.reservation_id``) keeps one CEL
context per record that argument may name (``scope``): the records of that kind the dialogue fetched
last (``LANES`` of them) are each converted once, into their own context, when they arrive, and a
call that names any of them finds its record, and the records that follow from it, converted. A
dialogue that looks several records up before it writes (every reservation of a user) is common,
and with one context per tool each call naming an earlier record converted it again, on the path.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable

from inception.actions.cel_context import EVERY, Wanted
from inception.actions.facts import Facts
from inception.actions.plans import ToolPlan

if TYPE_CHECKING:
    from inception.actions.rule_check import RuleCheck

LANES = 3  # records of a tool's lane kind read ahead: the ones the dialogue fetched last
# contexts a tool keeps, its lanes' and those of the records that left them last (a call may still
# name one); a new record's context takes over the one used least recently (cel_context._adopt)
KEPT = LANES + 2


def scope(tool: ToolPlan, args: dict[str, Any], bound: dict[str, Any]) -> Hashable:
    """The CEL context a call of ``tool`` is judged in: the one of the record its lane argument
    names when the dialogue fetched it, else the tool's own."""
    if tool.lane is not None and bound.get(tool.lane[0]) is not None:
        value = args.get(tool.lane[1])
        return (tool.name, str(value))  # a str or an int: the record was found by it (rule_check._resolve)
    return tool.name


def read_ahead(rules: "RuleCheck", tools: list[ToolPlan], facts: Facts, last: dict[Hashable, Any]) -> None:
    """Convert into each tool's contexts what its rules read whatever the call's arguments (now,
    today, tables, the user's turns) and the records its binds most likely find: for the lane, each
    of the records of its kind fetched last; for another bind keyed by one argument, the record of
    its kind fetched last; and the binds that follow from those. A call that binds another record
    has it converted then, as with no read ahead: each slot's key says which value it holds
    (cel_context), a guess is never read in place of another value. A context is skipped when the
    last read ahead on this thread saw the same for it (``last``: scope -> what it saw)."""
    latest: dict[str, Any] = {}
    lanes: dict[str, list[tuple[str, Any]]] = {}  # kind -> (key, record) of the ones fetched last
    for tool in tools:
        for kind in tool.guessed:
            if kind not in latest:
                key = facts.latest(kind)
                latest[kind] = (key, facts.record(kind, key) if key is not None else None)
        if tool.lane is None:
            _one(rules, tool, tool.name, latest, facts, last)
            continue
        kind = tool.lane[2]
        if kind not in lanes:
            lanes[kind] = [(key, facts.record(kind, key)) for key in facts.recent(kind, LANES)]
        if not lanes[kind]:
            _one(rules, tool, tool.name, latest, facts, last)
        # the earlier records first: a new record's context takes over one no lane holds any more
        # (cel_context._adopt), never one a lane still needs
        for n, (key, record) in reversed(list(enumerate(lanes[kind]))):
            _one(rules, tool, (tool.name, key), {**latest, kind: (key, record)}, facts, last, turns=n == 0)


def _one(rules: "RuleCheck", tool: ToolPlan, where: Hashable, latest: dict[str, Any], facts: Facts,
         last: dict[Hashable, Any], turns: bool = True) -> None:
    """One context read ahead. ``turns`` False (a lane other than the latest record's): a new user
    turn alone is not read into it, a call naming that record converts the turn itself (one text)."""
    held = tuple([latest[kind][1] for kind in tool.guessed])
    seen = (tuple(map(id, held)), facts.lowered if tool.reads_turns and turns else None,
            facts.now if tool.reads_now else None)
    was = last.get(where)
    if was is not None and was[0] == seen and rules.cel.holds(where):
        return  # what this context holds is what the dialogue gives
    last[where] = (seen, held)  # the records kept alive: their ids stay theirs
    guess: dict[str, Any] = {}
    if was is not None and was[0][0] == seen[0] and rules.cel.holds(where):
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
            rules.cel.context(where, wanted, family=KEPT)
        except Exception:  # a value the library cannot take: the check meets it (or not) itself
            last.pop(where, None)
