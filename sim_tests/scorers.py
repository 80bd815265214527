"""Scorers: did the trial succeed? Each looks at one thing and says why (τ²-bench style: the
final database must match the gold state and required information must be communicated;
ReIn style: the expected recovery action must be taken). A trial passes when all its suite's
scorers pass.

A scorer is made by a factory decorated with ``@scorer``: calling the factory records its
arguments, and the scorer is an async ``(Outcome) -> Score``. A suite names the scorers it runs
(``scorers: [db_state, {name: polite, args: {word: please}}, "mypkg.checks:polite"]``; unset, the
built-in ``DEFAULT``), and the run log records each with its arguments. Registering a scorer
changes no suite that does not name it:

>>> import asyncio
>>> @scorer
... def polite(word: str = "please"):
...     async def check(o: Outcome) -> Score:
...         ok = all(word in m.lower() for m in o.agent_texts())
...         return Score(name="polite", passed=ok, detail="" if ok else f"no {word!r}")
...     return check
>>> made = polite(word="kindly")
>>> made.name, made.args
('polite', {'word': 'kindly'})
>>> [s.name for s in resolve([{"name": "polite", "args": {"word": "kindly"}}, "db_state"])]
['polite', 'db_state']
>>> "polite" in [s.name for s in resolve(None)]
False
"""
from __future__ import annotations

import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import inception
from middleware.action_hold import replayed
from policies.loader import load_policy
from policies.messages import AssistantMessage, parse_messages
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


ScoreFn = Callable[["Outcome"], Awaitable[Score]]


@dataclass(frozen=True)
class Scorer:
    """A made scorer: its name, the arguments it was made with, and the async check."""
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    check: ScoreFn | None = None

    async def __call__(self, o: Outcome) -> Score:
        return await self.check(o)

    @property
    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "args": dict(self.args)}


FACTORIES: dict[str, Callable[..., Scorer]] = {}
DEFAULT = ("db_state", "communicated", "recovery", "turn_limit", "patience", "actions")


def scorer(factory: Callable[..., ScoreFn] | None = None, *, name: str | None = None) -> Any:
    """Register ``factory`` (which returns an async ``(Outcome) -> Score``) under ``name`` (default:
    its own); calling the registered factory returns a ``Scorer`` that remembers its arguments."""
    if factory is None:
        return lambda f: scorer(f, name=name)
    key = name or factory.__name__
    signature = inspect.signature(factory)

    def make(*args: Any, **kwargs: Any) -> Scorer:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        check = factory(*bound.args, **bound.kwargs)
        if not inspect.iscoroutinefunction(check):
            raise TypeError(f"scorer {key!r}: the factory must return an async function")
        return Scorer(key, dict(bound.arguments), check)

    make.__name__, make.__doc__ = factory.__name__, factory.__doc__
    make.scorer_name = key  # type: ignore[attr-defined]
    make.parameters = frozenset(signature.parameters)  # type: ignore[attr-defined]  (what resolve may fill in)
    FACTORIES[key] = make
    return make


def resolve(specs: list[Any] | None, run: dict[str, Any] | None = None) -> list[Scorer]:
    """Scorers from a suite's ``scorers`` entries: a registered name, ``"module:factory"``, or
    ``{name, args}``; None or empty: ``DEFAULT``. ``run``: what the run knows (its ``policy``), given
    to every factory that takes such an argument and was not given it. Raises ValueError naming an
    unknown one."""
    out = []
    for spec in specs or DEFAULT:
        if isinstance(spec, Scorer):
            out.append(spec)
            continue
        name, args = (spec, {}) if isinstance(spec, str) else (spec["name"], dict(spec.get("args") or {}))
        factory = _factory(name)
        given = {k: v for k, v in (run or {}).items() if k in factory.parameters and k not in args}
        out.append(factory(**given, **args))
    return out


def _factory(name: str) -> Callable[..., Scorer]:
    if name in FACTORIES:
        return FACTORIES[name]
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            made = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"scorer {name!r}: {type(e).__name__}: {e}") from e
        if not callable(made) or not hasattr(made, "scorer_name"):
            raise ValueError(f"scorer {name!r} is not a factory decorated with @scorer")
        return made
    raise ValueError(f"unknown scorer {name!r} (registered: {', '.join(sorted(FACTORIES))}; "
                     f"or 'package.module:factory')")


def expected_db_hash(scenario: Scenario) -> str:
    """The gold state: a fresh database with the gold actions applied (no faults injected)."""
    env = get_domain(scenario.domain).environment()
    for action in scenario.criteria.actions:
        env.execute(action.tool, action.args)
        if env.calls[-1].error:
            raise ValueError(f"scenario {scenario.id}: gold action {action.tool} fails: {env.calls[-1].error}")
    return env.hash()


@scorer
def db_state() -> ScoreFn:
    async def check(o: Outcome) -> Score:
        if o.scenario.criteria.ignore_db:
            return Score(name="db_state", passed=True, detail="not checked (ignore_db)")
        ok = o.final_db_hash == o.expected_db_hash
        writes = [c.name for c in o.calls if c.error is None and get_domain(o.scenario.domain).tools.get(c.name)
                  and get_domain(o.scenario.domain).tools[c.name].writes]
        detail = "final database matches the gold state" if ok else (
            f"final database {o.final_db_hash} != gold {o.expected_db_hash}; writes made: {', '.join(writes) or 'none'}")
        return Score(name="db_state", passed=ok, detail=detail)
    return check


@scorer
def communicated() -> ScoreFn:
    async def check(o: Outcome) -> Score:
        said = " ".join(o.agent_texts()).lower()
        missing = [s for s in o.scenario.criteria.communicate if s.lower() not in said]
        return Score(name="communicated", passed=not missing,
                     detail=f"missing: {', '.join(missing)}" if missing else "all required information given")
    return check


def _writes_between(o: Outcome, start_turn: int) -> int:
    """Successful write calls the agent made after user turn ``start_turn`` and before its first text."""
    tools = get_domain(o.scenario.domain).tools
    turn, writes = 0, 0
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


@scorer
def recovery() -> ScoreFn:
    async def check(o: Outcome) -> Score:
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
    return check


@scorer
def turn_limit() -> ScoreFn:
    async def check(o: Outcome) -> Score:
        ok = o.ended_by != "turn_limit"
        return Score(name="turn_limit", passed=ok,
                     detail=f"ended by {o.ended_by}" if ok else f"cut at the turn limit ({o.scenario.max_turns})")
    return check


@scorer
def patience() -> ScoreFn:
    """An impatient user who gave up is a failure of the agent, whatever the database says."""
    async def check(o: Outcome) -> Score:
        ok = o.ended_by != "gave_up"
        return Score(name="patience", passed=ok, detail="the user did not give up" if ok else
                     f"the user gave up after {o.scenario.user.patience} turns without progress")
    return check


@scorer
def actions(policy: str = "default") -> ScoreFn:
    """A process score: the pack's action rules and built-in checks, the ones that hold a call in
    front of a live agent, replayed on every reply the agent sent (``rule_findings``); by default the
    run's policy, so every arm is judged by the rules the rein arm enforces. It does not decide the
    verdict: a trial that passed while breaking a rule is a lucky pass (``TrialRecord.lucky``)."""
    return rules_check(inception.build(load_policy(policy)))


def rules_check(checker: Any) -> ScoreFn:
    """The ``actions`` score with any ``checker`` that has ``check_draft`` (an Inception)."""
    async def check(o: Outcome) -> Score:
        tools = get_domain(o.scenario.domain).tool_schemas()
        found = rule_findings(checker, o.messages, tools)
        said = "; ".join(f"{d.rule_id} on {name} (message {i}){': ' + d.evidence[:120] if d.evidence else ''}"
                         for i, name, d in found)
        return Score(name="actions", passed=not found, process=True, rules=[d.rule_id for _, _, d in found],
                     detail=f"broke {said}" if found else "no action rule broken")
    return check


def rule_findings(checker: Any, messages: list[dict[str, Any]],
                  tools: list[dict[str, Any]] | None) -> list[tuple[int, str, Any]]:
    """(message index, tool name, finding) for every action rule the agent's replies broke: each
    reply checked by ``checker.check_draft`` (``inception.base.Inception``) against the dialogue
    before it, as rein checks a draft; held or flagged alike, malformed calls left out."""
    parsed = parse_messages([{k: v for k, v in m.items() if k != "inner"} for m in messages])
    names = {c.id: c.function.name for m in parsed if isinstance(m, AssistantMessage) for c in m.tool_calls or []}
    return [(i, names.get(d.call_id, "reply"), d) for i, d in replayed(checker, parsed, tools)]


async def score(o: Outcome, scorers: list[Scorer] | None = None) -> list[Score]:
    """The verdicts of ``scorers`` (default: ``DEFAULT``) on one outcome, in order."""
    return [await s(o) for s in (scorers if scorers is not None else resolve(None))]
