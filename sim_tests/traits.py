"""Behaviour traits of simulated users: how real people differ from a cooperative simulator.

A scripted user who states its whole goal, with every id, in one clean sentence is an easy mode
("Mind the Sim2Real Gap in User Simulation for Agentic Tasks"). Each trait changes that in one
way, for both simulators — a deterministic, seeded transform of the scripted user's lines and
rules (``scripted_steps`` here, the run-time parts in ``users.ScriptedUser``), and an instruction
in the LLM user's prompt (``instructions``):

- ``withholding``  gives ids and details only when the agent asks for them;
- ``incremental``  reveals the goal over several turns;
- ``informal``     lower case, abbreviations, missing punctuation, seeded typos;
- ``impatient``    after ``patience`` turns without progress says so, then gives up;
- ``tangent``      one off-topic remark mid-dialogue;
- ``goal_shift``   turns to a second goal mid-dialogue (the criteria hold both);
- ``role``         asks on behalf of someone else ("my mother's order").

``with_traits`` makes a variant of any scenario (clean or failing); ``rein sim generate SUITE
--traits withholding,informal+impatient --seed N`` writes them. Example::

    variant = with_traits(scenario, ["withholding", "informal"], seed=7)
    variant.id, variant.trait        # "retail-cancel-kettle@withholding+informal", "withholding+informal"
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from sim_tests.domains import get_domain
from sim_tests.scenario import TRAITS, Action, GoalShift, Rule, Scenario, Suite

STOP = "###STOP###"
GIVE_UP = "###GIVE-UP###"
# An agent reply that asks the user for a detail (what a withholding user waits for).
ASKS = (r"\b(?:id|number|which (?:one|order|booking)|what(?:'s| is) (?:your|the)|"
        r"(?:could|can|would) you (?:please )?(?:give|provide|tell|share|confirm|send)|"
        r"please (?:provide|give|share|confirm)|need (?:your|the))\b")
# Extra user turns each trait may take (a variant's turn limit grows by them).
EXTRA_TURNS = {"withholding": 2, "incremental": 2, "informal": 0, "impatient": 2, "tangent": 1,
               "goal_shift": 3, "role": 0}
RELATIONS = [("mother", "her", "she", "her"), ("father", "his", "he", "him"),
             ("grandmother", "her", "she", "her"), ("husband", "his", "he", "him")]
REMARKS = ["By the way, it has been raining here all week.", "Sorry, my cat just walked across the keyboard.",
           "Unrelated, but do you know if the football is on tonight?", "Ha, I just burnt my toast."]
COMPLAINTS = ["This is going nowhere. I've already told you what I need.",
              "Come on, this is taking forever. Can you just sort it out?"]
GIVE_UP_LINE = f"Forget it, I'll sort it out some other way. {GIVE_UP}"


@dataclass
class Step:
    """One scripted turn after the traits' transforms; ``withheld`` is the line as first written
    (with its ids), given when the agent asks for the details."""
    say: str | None
    rules: list[Rule] = field(default_factory=list)
    withheld: str | None = None


def base_id(scenario_id: str) -> str:
    """The scenario a trait variant was made from (ids are ``SOURCE@trait+trait``)."""
    return scenario_id.split("@", 1)[0]


def rng(scenario: Scenario, purpose: str) -> random.Random:
    """A generator seeded by the scenario's seed, its source id and what it is for: the same
    variant makes the same choices in every run, and traits do not disturb each other's draws."""
    return random.Random(f"{scenario.user.seed}:{base_id(scenario.id)}:{purpose}")


def relation(scenario: Scenario) -> tuple[str, str, str, str]:
    """role: who the user asks for — (noun, possessive, subject, object)."""
    return rng(scenario, "role").choice(RELATIONS)


def parse_traits(spec: str) -> list[list[str]]:
    """``"withholding,informal+impatient"`` -> ``[["withholding"], ["informal", "impatient"]]``."""
    out = []
    for group in filter(None, (g.strip() for g in spec.split(","))):
        names = [n.strip() for n in group.split("+") if n.strip()]
        unknown = [n for n in names if n not in TRAITS]
        if unknown:
            raise ValueError(f"unknown trait(s) {', '.join(unknown)}; known: {', '.join(TRAITS)}")
        out.append(names)
    return out


def _shift(scenario: Scenario) -> GoalShift | None:
    """goal_shift: the domain's first second goal for the same owner about another entity."""
    if scenario.target is None:
        return None
    done = {(a.tool, tuple(sorted(a.args.items()))) for a in scenario.criteria.actions}
    for hint in get_domain(scenario.domain).variants.goal_shifts:
        actions = [Action.model_validate(a) for a in hint.actions]
        if (hint.owner == scenario.target.owner and hint.target != scenario.target.id
                and not any((a.tool, tuple(sorted(a.args.items()))) in done for a in actions)):
            return GoalShift(goal=hint.goal, say=hint.say, actions=actions, communicate=hint.communicate)
    return None


def with_traits(scenario: Scenario, traits: list[str], seed: int = 0) -> Scenario | None:
    """A variant of ``scenario`` whose user has ``traits``; None when the scenario cannot carry
    them (``goal_shift`` needs a second goal the domain offers for the same user)."""
    traits = list(dict.fromkeys([*scenario.user.traits, *traits]))
    unknown = [t for t in traits if t not in TRAITS]
    if unknown:
        raise ValueError(f"unknown trait(s) {', '.join(unknown)}; known: {', '.join(TRAITS)}")
    probe = scenario.model_copy(update={"user": scenario.user.model_copy(update={"seed": seed})})
    shift = scenario.user.shift
    criteria = scenario.criteria
    if "goal_shift" in traits and shift is None:
        shift = _shift(probe)
        if shift is None:
            return None
        criteria = criteria.model_copy(update={"actions": [*criteria.actions, *shift.actions],
                                               "communicate": [*criteria.communicate, *shift.communicate]})
    user = scenario.user.model_copy(update={"traits": traits, "seed": seed, "shift": shift})
    label = "+".join(traits)
    return scenario.model_copy(update={
        "id": f"{base_id(scenario.id)}@{label}", "user": user, "criteria": criteria,
        "max_turns": scenario.max_turns + sum(EXTRA_TURNS[t] for t in traits),
        "description": f"{scenario.description} [user: {label}]".strip()})


# ---- the scripted user's lines ---------------------------------------------------------------
def _first_name(scenario: Scenario) -> str:
    m = re.match(r"\s*([A-Z][a-z]+)", scenario.user.persona)
    return m.group(1) if m else "me"


def _withhold(scenario: Scenario, text: str) -> str:
    """The line without its ids: the target becomes 'my order', the user id a first name, other
    ids 'the new flight' (from the fact's name)."""
    t = scenario.target
    if t is not None:
        phrase = get_domain(scenario.domain).variants.vague_phrases.get(t.kind, f"my {t.kind}")
        text = re.sub(rf"(?:(?:the|my)\s+)?{t.kind}\s+{re.escape(t.id)}|{re.escape(t.id)}", phrase, text, flags=re.I)
    for key, value in scenario.user.known.items():
        if not re.fullmatch(r"\S*[\d_]\S*", value) or (t is not None and value == t.id):
            continue
        is_user = key == "user_id" or (t is not None and value == t.owner)
        text = re.sub(rf"\b(?:user\s+)?{re.escape(value)}\b", _first_name(scenario) if is_user
                      else f"the {key.replace('_', ' ')}", text)
    return text


def _for_someone(scenario: Scenario, text: str) -> str:
    """role: first person about the account becomes the relative's."""
    noun, pos, sub, obj = relation(scenario)
    owner = scenario.target.owner if scenario.target else scenario.user.known.get("user_id", "")
    for pattern, repl in ((r"\bmy\b", pos), (r"\bI no longer need\b", f"{sub} no longer needs"),
                          (r"\bI ordered\b", f"{sub} ordered"), (r"\bI want\b", f"{sub} wants"),
                          (r"\bI really need\b", f"{sub} really needs"), (r"\bfor me\b", f"for {obj}")):
        text = re.sub(pattern, repl, text)
    if owner:
        text = re.sub(rf"\b(?:I'm|I am|this is|user)\s+{re.escape(owner)}(?:\s+here)?|\b{re.escape(owner)}\s+here",
                      f"I'm asking for my {noun}, {pos} user id is {owner}", text, flags=re.I)
    return text


def _incremental(scenario: Scenario, steps: list[Step]) -> list[Step]:
    """The opening turn says only who is writing and what it is about; each sentence of the goal
    comes in a turn of its own."""
    first = steps[0]
    sentences = re.split(r"(?<=[.!?])\s+", (first.say or "").strip())
    if len(sentences) < 1 or first.say == STOP:
        return steps
    kind = scenario.target.kind if scenario.target else "request"
    article = "an" if kind[0] in "aeiou" else "a"
    greeting = sentences[0] if len(sentences) > 1 and re.match(r"(?i)(hi|hello|hey)\b|.*\bhere\b", sentences[0]) \
        and not re.search(r"\b(cancel|return|change|move|upgrade|send|put)\b", sentences[0], re.I) else ""
    rest = sentences[1:] if greeting else sentences
    opening = Step(say=f"{greeting or 'Hi.'} I need some help with {article} {kind}.", rules=[])
    goal = [Step(say=s) for s in rest]
    goal[-1] = Step(say=goal[-1].say, rules=first.rules, withheld=None)
    return [opening, *goal, *steps[1:]]


def scripted_steps(scenario: Scenario) -> list[Step]:
    """The scripted user's turns with the static traits applied (role, incremental, withholding);
    the run-time ones (impatient, tangent, goal_shift, informal) are applied as the user speaks."""
    traits = scenario.user.traits
    steps = [Step(say=t.say, rules=list(t.rules)) for t in scenario.user.script]
    if "role" in traits:
        steps = [Step(say=_for_someone(scenario, s.say) if s.say else s.say,
                      rules=[r.model_copy(update={"say": _for_someone(scenario, r.say)}) for r in s.rules])
                 for s in steps]
    if "incremental" in traits:
        steps = _incremental(scenario, steps)
    if "withholding" in traits:
        out = []
        for s in steps:
            hidden = _withhold(scenario, s.say) if s.say and s.say != STOP else s.say
            out.append(Step(say=hidden, rules=s.rules, withheld=s.say if hidden != s.say else None))
        steps = out
    return steps


def answer_with_details(original: str) -> str:
    """withholding: the reply when the agent asks — the line as first meant, without its greeting."""
    return "Sure: " + re.sub(r"^(?:hi|hello|hey)\b[,!.]?\s*", "", original, flags=re.I)


# ---- the LLM user's prompt -------------------------------------------------------------------
def instructions(scenario: Scenario) -> list[str]:
    """One instruction per trait, for the LLM user's system prompt."""
    u, out = scenario.user, []
    for trait in u.traits:
        if trait == "withholding":
            out.append("Do not volunteer ids, numbers or details: give each one only when the agent asks for it.")
        elif trait == "incremental":
            out.append("Reveal your goal bit by bit: first only what it is about, then one detail per message.")
        elif trait == "informal":
            out.append("Write like a hurried person on a phone: lower case, abbreviations (pls, u, thx), little "
                       "punctuation, the odd typo. Keep ids and addresses exact.")
        elif trait == "impatient":
            out.append(f"You are impatient: after {u.patience} replies that do not move your request forward, say "
                       f"you are fed up; if it still does not move, give up and write {GIVE_UP}.")
        elif trait == "tangent":
            out.append(f"Once, in your second message, make an off-topic remark such as: "
                       f"{rng(scenario, 'tangent').choice(REMARKS)!r}")
        elif trait == "goal_shift" and u.shift is not None:
            out.append(f"When your first goal is done (or cannot be done), change your goal: {u.shift.goal} "
                       f"Only then write {STOP}.")
        elif trait == "role":
            noun = relation(scenario)[0]
            out.append(f"You are asking on behalf of your {noun}: the account and the goal are theirs; say so.")
    return out


def suite_with_traits(suite: Suite, spec: str, seed: int = 0, cooperative: bool = True) -> Suite:
    """Every scenario of ``suite`` once per trait group of ``spec`` (``"informal,withholding+role"``),
    after the scenarios as they are (unless ``cooperative=False``). Scenarios that cannot carry a
    group are left out of it."""
    from sim_tests.scenario import Suite

    groups = parse_traits(spec)
    scenarios = [s for s in suite.scenarios if cooperative]
    for group in groups:
        scenarios += [v for s in suite.scenarios if (v := with_traits(s, group, seed)) is not None]
    return Suite(name=suite.name, description=suite.description, scenarios=scenarios)
