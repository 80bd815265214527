"""Failure generation: turn a clean scenario into one variant per error type (after the ReIn
paper, which builds failure scenarios from clean tasks).

Each generator is deterministic — it rewrites the scripted user's turns, the LLM user's
instruction, the environment's faults and the success criteria — so a generated suite saved
to YAML reproduces the same run. A generator returns None when the scenario cannot carry that
failure (e.g. a vague reference needs several entities that qualify). Example::

    variants = generate(load_suite("clean").scenarios[0])    # [Scenario, ...], one per label
"""
from __future__ import annotations

import re
from typing import Any, Callable

from sim_tests.domains import Domain, get_domain
from sim_tests.scenario import Criteria, Failure, Rule, Scenario, ScriptTurn

# An agent reply that asks the user to choose or explain (used by generated scripted users).
CLARIFY = (r"which|what do you mean|did you mean|do you mean|could you (?:clarify|confirm which)|specify|"
           r"more than one|several|\bboth\b|\beither\b|\bor\b[^.?!]*\?")
TROUBLE = r"error|problem|unable|fail|couldn.t|could not|try again|issue|unavailable|timed? ?out"
STOP = "###STOP###"

Generator = Callable[[Scenario, Domain], "Scenario | None"]
GENERATORS: dict[str, Generator] = {}


def generator(label: str) -> Callable[[Generator], Generator]:
    def register(fn: Generator) -> Generator:
        GENERATORS[label] = fn
        return fn
    return register


def generate(clean: Scenario, labels: list[str] | None = None) -> list[Scenario]:
    """Every variant the clean scenario supports (or only ``labels``), in generator order."""
    if clean.failure is not None:
        raise ValueError(f"{clean.id}: variants are generated from clean scenarios (this one injects "
                         f"{clean.label})")
    unknown = set(labels or []) - set(GENERATORS)
    if unknown:
        raise ValueError(f"unknown failure label(s) {', '.join(sorted(unknown))}; known: {', '.join(GENERATORS)}")
    domain = get_domain(clean.domain)
    out = []
    for label, make in GENERATORS.items():
        if labels and label not in labels:
            continue
        variant = make(clean, domain)
        if variant is not None:
            out.append(variant)
    return out


# ---- helpers -------------------------------------------------------------------------------
def _variant(clean: Scenario, failure: Failure, turns: list[ScriptTurn], criteria: Criteria | None = None,
             extra_turns: int = 1) -> Scenario:
    label = failure.subtype or failure.type
    user = clean.user.model_copy(update={"script": turns})
    return clean.model_copy(update={
        "id": f"{clean.id}--{label}", "source": clean.id, "failure": failure, "user": user,
        "criteria": criteria or clean.criteria, "max_turns": clean.max_turns + extra_turns,
        "description": f"{clean.description} [{label}: {failure.strategy}]".strip()})


def _mention_turn(clean: Scenario) -> int | None:
    """Index of the first scripted turn that names the target entity."""
    if clean.target is None:
        return None
    for i, turn in enumerate(clean.user.script):
        if turn.say and clean.target.id in turn.say:
            return i
    return None


def _lookup(entity: dict[str, Any], path: str) -> str:
    value: Any = entity
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value.get(part)
    return str(value)


def _siblings(clean: Scenario, domain: Domain) -> dict[str, dict[str, Any]]:
    """Entities of the target's kind owned by the same user (the target included)."""
    assert clean.target is not None
    table, field = domain.variants.owners[clean.target.kind].split(".")
    rows = domain.data.db[table]
    return {key: row for key, row in rows.items() if row.get(field) == clean.target.owner}


def _clarified(turns: list[ScriptTurn], at: int, answer: str) -> list[ScriptTurn]:
    """Insert, after turn ``at``, a turn that answers a clarifying question with ``answer`` and
    otherwise behaves like the turn that followed (so an agent that does not ask goes on)."""
    following = turns[at + 1] if at + 1 < len(turns) else ScriptTurn(say=STOP)
    inserted = ScriptTurn(say=following.say, rules=[Rule(if_agent=CLARIFY, say=answer), *following.rules])
    return turns[:at + 1] + [inserted] + turns[at + 1:]


def _replace(turn: ScriptTurn, old: str, new: str) -> ScriptTurn:
    return turn.model_copy(update={"say": (turn.say or "").replace(old, new, 1)})


def _unsupported(clean: Scenario, domain: Domain, subtype: str, options: list[str], strategy: str) -> Scenario | None:
    at = _mention_turn(clean)
    if at is None or not options:
        return None
    t = clean.target
    request = options[sum(map(ord, clean.id)) % len(options)]  # stable pick, varies by scenario
    turns = [ScriptTurn(say=f"Hi, I'm {t.owner}. About {t.kind} {t.id}: {request}"),
             ScriptTurn(say="I really need this. Are you sure you can't do it?"), ScriptTurn(say=STOP)]
    failure = Failure(type="unsupported_request", subtype=subtype, turn=1, strategy=strategy,
                      instruction=f"Ask only for this, which the agent cannot do: {request!r}. Insist once, then stop.")
    # The task is replaced: nothing may change in the database; the agent declines or transfers.
    return _variant(clean, failure, turns, Criteria(actions=[], recovery="decline"))


# ---- generators ----------------------------------------------------------------------------
@generator("vague_reference")
def vague_reference(clean: Scenario, domain: Domain) -> Scenario | None:
    at = _mention_turn(clean)
    if at is None or clean.target.kind not in domain.variants.vague_phrases or len(_siblings(clean, domain)) < 2:
        return None
    t = clean.target
    phrase = domain.variants.vague_phrases[t.kind]
    turns = list(clean.user.script)
    said = turns[at].say or ""
    turns[at] = turns[at].model_copy(update={"say": re.sub(rf"(?:(?:the|my)\s+)?{t.kind}\s+{re.escape(t.id)}|{re.escape(t.id)}",
                                                             phrase, said, count=1, flags=re.I)})
    failure = Failure(type="ambiguous_request", subtype="vague_reference", turn=at + 1, strategy="replace_reference",
                      instruction=f"Call it only {phrase!r}; give the id {t.id} only when asked which one.")
    return _variant(clean, failure, _clarified(turns, at, f"I mean {t.kind} {t.id}."),
                    clean.criteria.model_copy(update={"recovery": "clarify"}))


@generator("polysemy")
def polysemy(clean: Scenario, domain: Domain) -> Scenario | None:
    at = _mention_turn(clean)
    if at is None or not clean.criteria.actions:
        return None
    tool = clean.criteria.actions[0].tool
    hint = next((h for h in domain.variants.polysemy if tool in h.covers), None)
    if hint is None:
        return None
    t = clean.target
    turns = list(clean.user.script)
    original = turns[at].say or ""
    turns[at] = ScriptTurn(say=f"Hi, I'm {t.owner}. I want to {hint.phrase} - {t.kind} {t.id}.")
    failure = Failure(type="ambiguous_request", subtype="polysemy", turn=at + 1, strategy="ambiguous_verb",
                      instruction=f"Say only {hint.phrase!r} (it can mean: {hint.meanings}); explain when asked.")
    return _variant(clean, failure, _clarified(turns, at, f"Sorry, to be precise: {original}"),
                    clean.criteria.model_copy(update={"recovery": "clarify"}))


@generator("contradiction")
def contradiction(clean: Scenario, domain: Domain) -> Scenario | None:
    at = _mention_turn(clean)
    kind = clean.target.kind if clean.target else ""
    if at is None or kind not in domain.variants.describe:
        return None
    siblings = _siblings(clean, domain)
    others = [e for key, e in siblings.items() if key != clean.target.id]
    if not others:
        return None
    path = domain.variants.describe[kind]
    wrong, right = _lookup(others[0], path), _lookup(siblings[clean.target.id], path)
    if wrong == right:
        return None
    turns = list(clean.user.script)
    turns[at] = turns[at].model_copy(update={"say": f"{turns[at].say} It's the {wrong} one."})
    failure = Failure(type="ambiguous_request", subtype="contradiction", turn=at + 1, strategy="id_vs_description",
                      instruction=f"Name {kind} {clean.target.id} but describe it as the {wrong} one; "
                                  f"when asked, say it is {clean.target.id}, the {right} one.")
    answer = f"Sorry, I mixed that up: it is {kind} {clean.target.id}, the {right} one."
    return _variant(clean, failure, _clarified(turns, at, answer),
                    clean.criteria.model_copy(update={"recovery": "clarify"}))


@generator("unsupported_operation")
def unsupported_operation(clean: Scenario, domain: Domain) -> Scenario | None:
    return _unsupported(clean, domain, "unsupported_operation", domain.variants.unsupported_operations,
                        "replace_goal_with_unsupported_operation")


@generator("unsupported_parameter")
def unsupported_parameter(clean: Scenario, domain: Domain) -> Scenario | None:
    return _unsupported(clean, domain, "unsupported_parameter", domain.variants.unsupported_parameters,
                        "replace_goal_with_unsupported_parameter")


@generator("out_of_domain")
def out_of_domain(clean: Scenario, domain: Domain) -> Scenario | None:
    at = _mention_turn(clean)
    options = domain.variants.out_of_domain
    if at is None or not options:
        return None
    request = options[sum(map(ord, clean.id)) % len(options)]
    turns = list(clean.user.script)
    turns[at] = turns[at].model_copy(update={"say": f"{turns[at].say} {request}"})
    failure = Failure(type="unsupported_request", subtype="out_of_domain", turn=at + 1, strategy="append_request",
                      instruction=f"Along with your goal, also ask: {request!r}")
    # The real task still has to be done; the extra request has to be declined.
    return _variant(clean, failure, turns, clean.criteria.model_copy(update={"recovery": "decline"}), 0)


@generator("tool_failure")
def tool_failure(clean: Scenario, domain: Domain) -> Scenario | None:
    if not clean.criteria.actions:
        return None
    tool = clean.criteria.actions[0].tool
    turns = list(clean.user.script)
    end = next((i for i, t in enumerate(turns) if t.say == STOP and not t.rules), len(turns))
    check = ScriptTurn(say="Thanks. Has it gone through?",
                       rules=[Rule(if_agent=TROUBLE, say="Could you please try again?")])
    turns = turns[:end] + [check] + turns[end:]
    failure = Failure(type="tool_failure", turn=1, strategy="environment_fault", tool=tool, times=1,
                      message=domain.variants.tool_failure_message,
                      instruction="If the agent reports a problem, ask it to try again.")
    return _variant(clean, failure, turns, clean.criteria.model_copy(update={"recovery": "retry"}))


@generator("repeated_user_turn")
def repeated_user_turn(clean: Scenario, domain: Domain) -> Scenario | None:
    at = _mention_turn(clean)
    if at is None:
        return None
    turns = list(clean.user.script)
    turns = turns[:at + 1] + [ScriptTurn(say=turns[at].say)] + turns[at + 1:]
    failure = Failure(type="action_loop", subtype="repeated_user_turn", turn=at + 2, strategy="repeat_verbatim",
                      instruction="Repeat your first request word for word once, as if you had not read the reply.")
    # The action must still happen exactly once: a doubled action changes the database.
    return _variant(clean, failure, turns, clean.criteria)
