"""User simulators: a scripted one for deterministic CI runs, an LLM one after τ²-bench.

A simulator sees only what a user would see (the texts exchanged) and answers one turn at a
time; it ends the dialogue with a stop token. Example::

    user = ScriptedUser(scenario)
    reply = await user.reply([])            # the opening turn
    reply.text, reply.stop                  # "Hi, I'm u_ava ...", None
"""
from __future__ import annotations

import re
from typing import Literal, Protocol

from pydantic import BaseModel

from policies.messages import AssistantMessage, SystemMessage, UserMessage, text_of
from policies.chat_model import ChatModel, ModelRequest
from sim_tests.scenario import Rule, Scenario

STOP = "###STOP###"

StopKind = Literal["stop", "transfer", "out_of_scope", "gave_up"]
STOP_TOKENS: dict[str, StopKind] = {"###STOP###": "stop", "###TRANSFER###": "transfer",
                                    "###OUT-OF-SCOPE###": "out_of_scope", "###GIVE-UP###": "gave_up"}
# What an impatient user counts as a turn without progress: trouble reported (or, below, a reply
# the agent already gave: the dialogue is going round).
NO_PROGRESS = r"error|problem|unable|fail|couldn.t|could not|try again|unavailable|timed? ?out"


class Exchange(BaseModel):
    """One visible message: who said it and what."""
    role: Literal["user", "assistant"]
    text: str


class UserReply(BaseModel):
    text: str
    stop: StopKind | None = None
    model_calls: int = 0


class UserSimulator(Protocol):
    """Answers the agent. ``seen`` is the visible dialogue so far, oldest first."""

    async def reply(self, seen: list[Exchange]) -> UserReply: ...


def parse_stop(text: str) -> UserReply:
    """Find a stop token anywhere in the text (models often wrap it in words)."""
    for token, kind in STOP_TOKENS.items():
        if token in text:
            return UserReply(text=text.strip(), stop=kind)
    return UserReply(text=text.strip())


class ScriptedUser:
    """Plays ``scenario.user.script`` turn by turn; a turn's first rule whose regex matches what the
    agent said since the user's last scripted turn wins, else its ``say``. Past the end it stops.

    The user's traits (``sim_tests.traits``) shape it: the lines are transformed once (role,
    incremental, withholding), and as it speaks a withholding user answers a question for
    details, a tangent user makes one remark at turn 2, a goal_shift user brings its second goal
    where it would have stopped, an impatient user complains after ``patience`` turns without
    progress and then gives up, and an informal user's every line is loosened (seeded)."""

    def __init__(self, scenario: Scenario):
        from sim_tests import traits

        if not scenario.user.script:
            raise ValueError(f"scenario {scenario.id} has no script for the scripted user")
        self.scenario = scenario
        self.traits = set(scenario.user.traits)
        self.steps = traits.scripted_steps(scenario)
        self.script = scenario.user.script
        self.turn = 0          # the next scripted step
        self.spoken = 0        # user turns said so far
        self.since = 0         # index in ``seen`` after the last scripted step was said
        self.pending: str | None = None   # a withheld line, given when the agent asks
        self.stalled = 0       # impatient: agent replies in a row without progress
        self.complained = False
        self.shift_said = "goal_shift" not in self.traits or scenario.user.shift is None
        self._t = traits

    def _say(self, text: str) -> UserReply:
        self.spoken += 1
        if "informal" in self.traits and text:
            text = self._informal(text, self._facts())
        return parse_stop(text)

    def _facts(self) -> list[str]:
        """What an informal user still types exactly: the facts it knows, the second goal's values."""
        shift = self.scenario.user.shift
        values = [str(v) for a in (shift.actions if shift else []) for v in a.args.values()]
        return [*self.scenario.user.known.values(), *values]

    def _informal(self, text: str, keep: list[str]) -> str:
        from sim_tests.informal import informal

        return informal(text, self._t.rng(self.scenario, f"informal:{self.spoken}"), keep)

    def _stop_or_shift(self, text: str, seen: list[Exchange]) -> UserReply:
        """A goal_shift user does not leave after the first goal: it brings the second."""
        if STOP_TOKENS.get(text.strip()) == "stop" and not self.shift_said:
            self.shift_said = True
            self.since = len(seen)
            self.steps[self.turn:self.turn] = [
                self._t.Step(say="Yes, please go ahead.", rules=[Rule(if_agent=r"done|cancel|return|updated|changed|"
                                                                     r"moved|is now|success", say=STOP)]),
                self._t.Step(say=STOP)]
            return self._say(self.scenario.user.shift.say)
        return self._say(text)

    def _impatience(self, last_agent: str, seen: list[Exchange]) -> UserReply | None:
        if "impatient" not in self.traits or not last_agent:
            return None
        earlier = [e.text for e in seen[:-1] if e.role == "assistant"]
        if re.search(NO_PROGRESS, last_agent, re.I) or last_agent in earlier:
            self.stalled += 1
        else:
            self.stalled = 0
        # Nor does it leave quietly after a reply that did nothing: it says so first, then gives up.
        leaving = self.stalled > 0 and self._would_stop(last_agent, seen)
        if self.complained and (self.stalled > self.scenario.user.patience or leaving):
            return self._say(self._t.GIVE_UP_LINE)
        if not self.complained and (self.stalled >= self.scenario.user.patience or leaving):
            self.complained = True
            return self._say(self._t.rng(self.scenario, "impatient").choice(self._t.COMPLAINTS))
        return None

    def _would_stop(self, last_agent: str, seen: list[Exchange]) -> bool:
        """Whether the script's next line, as things stand, ends the dialogue."""
        if self.turn >= len(self.steps):
            return True
        step = self.steps[self.turn]
        agent_said = " ".join(e.text for e in seen[self.since:] if e.role == "assistant")
        said = next((r.say for r in step.rules if re.search(r.if_agent, agent_said, re.I)), step.say)
        return STOP_TOKENS.get((said or STOP).strip()) == "stop" and self.shift_said

    async def reply(self, seen: list[Exchange]) -> UserReply:
        agent_said = " ".join(e.text for e in seen[self.since:] if e.role == "assistant")
        last_agent = next((e.text for e in reversed(seen) if e.role == "assistant"), "")
        fed_up = self._impatience(last_agent, seen)
        if fed_up is not None:
            return fed_up
        if "tangent" in self.traits and self.spoken == 1:
            return self._say(self._t.rng(self.scenario, "tangent").choice(self._t.REMARKS))
        if self.turn >= len(self.steps):
            return self._stop_or_shift(STOP, seen)
        step = self.steps[self.turn]
        for rule in step.rules:
            if re.search(rule.if_agent, agent_said, re.I):
                self._advance(seen, None)
                return self._stop_or_shift(rule.say, seen)
        if self.pending and re.search(self._t.ASKS, last_agent, re.I):
            answer, self.pending = self._t.answer_with_details(self.pending), None
            return self._say(answer)
        self._advance(seen, step.withheld)
        return self._stop_or_shift(step.say if step.say is not None else STOP, seen)

    def _advance(self, seen: list[Exchange], withheld: str | None) -> None:
        self.turn += 1
        self.since = len(seen)
        if withheld:
            self.pending = withheld


def user_prompt(scenario: Scenario) -> str:
    u = scenario.user
    lines = [
        "You are playing a customer talking to a customer-service agent. Stay in character.",
        f"Persona: {u.persona}",
        f"Your goal: {u.goal}",
    ]
    if u.known:
        lines.append("You know: " + "; ".join(f"{k} = {v}" for k, v in u.known.items()))
    if u.unknown:
        lines.append("You do not know (never invent it): " + "; ".join(u.unknown))
    if scenario.failure is not None and scenario.failure.instruction:
        lines.append(f"Important: {scenario.failure.instruction}")
    from sim_tests.traits import instructions

    lines += [f"How you behave: {line}" for line in instructions(scenario)]
    lines += [
        "Guidelines: write one short message per turn, as the customer, never as the agent. "
        "Give information only when it is asked for or needed. Do not make up facts.",
        "When your goal is done or cannot be done, write ###STOP###. If you are transferred to a human, "
        "write ###TRANSFER###. If the agent keeps talking about something unrelated, write ###OUT-OF-SCOPE###.",
    ]
    return "\n".join(lines)


class LLMUser:
    """A user played by a chat model from the scenario's persona, goal and guidelines.

    The dialogue is given to the model with roles flipped (the agent speaks as "user"), so
    the model writes the customer's next line.
    """

    def __init__(self, scenario: Scenario, model: ChatModel, temperature: float = 0.7, max_tokens: int = 96):
        self.scenario = scenario
        self.model = model
        self.settings = {"temperature": temperature, "max_tokens": max_tokens}

    async def reply(self, seen: list[Exchange]) -> UserReply:
        messages: list = [SystemMessage(content=user_prompt(self.scenario))]
        if not seen:
            messages.append(UserMessage(content="(The agent is waiting. Write your first message.)"))
        for e in seen:
            messages.append(UserMessage(content=e.text) if e.role == "assistant" else AssistantMessage(content=e.text))
        response = await self.model.complete(ModelRequest(messages=messages, extra=dict(self.settings)))
        text = text_of(response.message).strip()
        reply = parse_stop(text) if text else UserReply(text="###STOP###", stop="stop")
        return reply.model_copy(update={"model_calls": 1})
