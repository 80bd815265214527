"""Scorers: did the trial succeed? Each looks at one thing and says why (τ²-bench style: the
final database must match the gold state and required information must be communicated;
ReIn style: the expected recovery action must be taken). A trial passes when all pass.

A scorer is a function ``(Outcome) -> Score`` registered by name. Example::

    @scorer("polite")
    def polite(o: Outcome) -> Score:
        ok = all("please" in m for m in o.agent_texts())
        return Score(name="polite", passed=ok, detail="" if ok else "no 'please'")
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from sim_tests.domains import ToolCallRecord, get_domain
from sim_tests.log import Score
from sim_tests.scenario import Scenario

REFUSAL = (r"can.?not|can.?t|unable|not able|not possible|don.?t (?:support|offer|handle|have)|"
           r"do not (?:support|offer|handle|have)|isn.?t something|outside|sorry|unfortunately|not allowed")
HANDOVER = r"transferr?(?:ing|ed)? you to a human|human agent (?:will|who)"
TRANSFER_TOOLS = {"transfer_to_human_agents", "transfer_to_human", "escalate_to_human"}


@dataclass
class Outcome:
    """What a finished dialogue left behind, as the scorers see it."""
    scenario: Scenario
    messages: list[dict[str, Any]]
    calls: list[ToolCallRecord]
    final_db_hash: str
    expected_db_hash: str | None
    ended_by: str

    def agent_texts(self, after_user_turn: int = 0) -> list[str]:
        """The agent's text replies after the given user turn (1-based; 0 = all)."""
        out, turn = [], 0
        for m in self.messages:
            if m["role"] == "user":
                turn += 1
            elif m["role"] == "assistant" and turn >= max(after_user_turn, 1) and m.get("content"):
                out.append(str(m["content"]))
        return out

    def transferred(self) -> bool:
        """A transfer tool ran, the user was told of a hand-over (e.g. rein resolved its own
        transfer tool), or the simulated user ended with ###TRANSFER###."""
        return (self.ended_by == "transfer" or any(c.name in TRANSFER_TOOLS and c.error is None for c in self.calls)
                or any(re.search(HANDOVER, t, re.I) for t in self.agent_texts()))


Scorer = Callable[[Outcome], Score]
SCORERS: dict[str, Scorer] = {}


def scorer(name: str) -> Callable[[Scorer], Scorer]:
    def register(fn: Scorer) -> Scorer:
        SCORERS[name] = fn
        return fn
    return register


def expected_db_hash(scenario: Scenario) -> str:
    """The gold state: a fresh database with the gold actions applied (no faults injected)."""
    env = get_domain(scenario.domain).environment()
    for action in scenario.criteria.actions:
        env.execute(action.tool, action.args)
        if env.calls[-1].error:
            raise ValueError(f"scenario {scenario.id}: gold action {action.tool} fails: {env.calls[-1].error}")
    return env.hash()


@scorer("db_state")
def db_state(o: Outcome) -> Score:
    if o.scenario.criteria.ignore_db:
        return Score(name="db_state", passed=True, detail="not checked (ignore_db)")
    ok = o.final_db_hash == o.expected_db_hash
    writes = [c.name for c in o.calls if c.error is None and get_domain(o.scenario.domain).tools.get(c.name)
              and get_domain(o.scenario.domain).tools[c.name].writes]
    detail = "final database matches the gold state" if ok else (
        f"final database {o.final_db_hash} != gold {o.expected_db_hash}; writes made: {', '.join(writes) or 'none'}")
    return Score(name="db_state", passed=ok, detail=detail)


@scorer("communicated")
def communicated(o: Outcome) -> Score:
    said = " ".join(o.agent_texts()).lower()
    missing = [s for s in o.scenario.criteria.communicate if s.lower() not in said]
    return Score(name="communicated", passed=not missing,
                 detail=f"missing: {', '.join(missing)}" if missing else "all required information given")


def _writes_between(o: Outcome, start_turn: int) -> int:
    """Successful write calls the agent made after user turn ``start_turn`` and before its first text."""
    tools = get_domain(o.scenario.domain).tools
    turn, writes, by_id = 0, 0, {}
    results = {m.get("tool_call_id"): m.get("content") for m in o.messages if m["role"] == "tool"}
    for m in o.messages:
        if m["role"] == "user":
            turn += 1
        elif m["role"] == "assistant" and turn >= start_turn:
            for c in m.get("tool_calls") or []:
                name = c["function"]["name"]
                if name in tools and tools[name].writes and '"error"' not in str(results.get(c["id"], "")):
                    writes += 1
            if m.get("content"):
                return writes
    return writes


@scorer("recovery")
def recovery(o: Outcome) -> Score:
    expected = o.scenario.criteria.recovery
    if expected is None:
        return Score(name="recovery", passed=True, detail="no recovery action expected")
    at = o.scenario.failure.turn if o.scenario.failure else 1
    replies = o.agent_texts(at)
    if expected == "clarify":
        first = replies[0] if replies else ""
        ok = "?" in first and _writes_between(o, at) == 0
        detail = "asked before acting" if ok else f"first reply after turn {at} did not ask first: {first[:120]!r}"
    elif expected == "decline":
        ok = o.transferred() or any(re.search(REFUSAL, r, re.I) for r in replies)
        detail = "declined or transferred" if ok else "never said it cannot do that (nor transferred)"
    elif expected == "transfer":
        ok = o.transferred()
        detail = "transferred to a human" if ok else "no transfer"
    else:  # retry: after an injected fault, the same tool succeeds later, or the agent hands over
        failed = [i for i, c in enumerate(o.calls) if c.injected]
        ok = bool(failed) and (o.transferred() or any(
            c.name == o.calls[failed[0]].name and c.error is None for c in o.calls[failed[0] + 1:]))
        detail = "recovered from the tool failure" if ok else (
            "the failing tool was never called" if not failed else "no successful retry and no transfer")
    return Score(name="recovery", passed=ok, detail=detail)


@scorer("turn_limit")
def turn_limit(o: Outcome) -> Score:
    ok = o.ended_by != "turn_limit"
    return Score(name="turn_limit", passed=ok,
                 detail=f"ended by {o.ended_by}" if ok else f"cut at the turn limit ({o.scenario.max_turns})")


@scorer("patience")
def patience(o: Outcome) -> Score:
    """An impatient user who gave up is a failure of the agent, whatever the database says."""
    ok = o.ended_by != "gave_up"
    return Score(name="patience", passed=ok, detail="the user did not give up" if ok else
                 f"the user gave up after {o.scenario.user.patience} turns without progress")


def score(o: Outcome, names: list[str] | None = None) -> list[Score]:
    return [SCORERS[n](o) for n in (names or list(SCORERS))]
