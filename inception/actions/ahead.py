"""The rule checks' read ahead: what a call's rules read, converted into CEL before the call is
drafted (``ActionChecker.prepare`` runs it while the agent writes; the check of the draft then
converts only what its arguments decide).

A CEL context per tool and record: for a tool whose first bind is keyed by an argument (a
reservation id), one context for each of the ``CANDIDATES`` records of that kind the dialogue
fetched last, and the check takes the one of the call's record (``RuleCheck.judge``). On the
airline dev set 22 of 110 such calls name another record than the one fetched last; they were the
slowest checks (the record, its user and the verdicts of the programs that read no argument all
worked out on the path). Measured in one process against the record fetched last only, every
draft checked by both, min of 7 walks: an exact guess took the first-check p99 from 0.21 to 0.19 ms.
Six candidates against one: the 30 slowest drafts 11-14 us faster, the read ahead's mean 9% dearer.
The evidence's parts of the guessed records (those no argument picks) and of now and today are
written here too (``Pieces.write_ahead``): kept by the records' identity, once a
dialogue. Paired in one process against writing them on the path, min of 7 walks: the 30 slowest
first checks 16 + 29-35 us faster, the read ahead's mean 8-11% dearer (an earlier try had measured no
gain: its runs were not paired).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Hashable

from inception.actions.cel_context import EVERY, Wanted
from inception.actions.facts import Facts
from inception.actions.plans import ToolPlan

CANDIDATES = 6  # records of a tool's first bound kind a read ahead fills a context for: 110 of 110 calls on airline dev

if TYPE_CHECKING:
    from inception.actions.rule_check import RuleCheck


def read_ahead(rules: "RuleCheck", tools: list[ToolPlan], facts: Facts, last: dict[Hashable, Any]) -> None:
    """Convert into a tool's contexts what its rules read whatever the call's arguments (now,
    today, tables, the user's turns) and the records its binds may find: for its first bind keyed
    by an argument, one context for each of the ``CANDIDATES`` records of that kind fetched last
    (for its other such binds, the record fetched last), with the binds that follow from that
    record; a record's map read at an argument's key with every entry (it serves any call's key);
    and the verdicts of the programs that read no argument. A call that binds another record has it
    converted then, as with no read ahead: each slot's key says which value it holds (cel_context),
    a guess is never read in place of another value. A context is skipped when the last read ahead
    on this thread saw the same for it (``last``: scope -> what it saw)."""
    latest: dict[str, Any] = {}
    for tool in tools:
        for kind in tool.guessed:
            if kind not in latest:
                key = facts.latest(kind)
                latest[kind] = (key, facts.record(kind, key) if key is not None else None)
        if tool.primary is None:
            _one(rules, tool, latest, facts, last, tool.name)
            continue
        kind = tool.primary[0]
        for key in facts.recent(kind, CANDIDATES) or [None]:
            guessed = latest if key == latest[kind][0] else {**latest, kind: (key, facts.record(kind, key))}
            _one(rules, tool, guessed, facts, last, (tool.name, key))


def _one(rules: "RuleCheck", tool: ToolPlan, latest: dict[str, Any], facts: Facts, last: dict[Hashable, Any],
         scope: Hashable) -> None:
    held = tuple([latest[kind][1] for kind in tool.guessed])
    seen = (tuple(map(id, held)), facts.lowered if tool.reads_turns else None, facts.now if tool.reads_now else None)
    was = last.get(scope)
    kept = was is not None and rules.cel.holds(scope)  # the context this scope's last read ahead filled
    if kept and was[0] == seen:
        return  # what this context holds is what the dialogue gives
    last[scope] = (seen, held)  # the records kept alive: their ids stay theirs
    # the records are bound even when they are the ones of last time (a new user turn): their slots
    # keep their values (same keys), and the programs that read them and the turns are run again
    guess: dict[str, Any] = {}
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
            context = rules.cel.context(scope, wanted)
        except Exception:  # a value the library cannot take: the check meets it (or not) itself
            last.pop(scope, None)
        else:
            for r in tool.rules:  # what the programs that read no argument give on these values
                for program, used in r.unargued:
                    if all(v in wanted for v in used):
                        rules.verdict(program, r, wanted, context)
            rules.pieces.write_ahead(tool.rules, bound, tool.binds)
