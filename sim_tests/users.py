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
from policies.model import ChatModel, ModelRequest
from sim_tests.scenario import Scenario

StopKind = Literal["stop", "transfer", "out_of_scope"]
STOP_TOKENS: dict[str, StopKind] = {"###STOP###": "stop", "###TRANSFER###": "transfer",
                                    "###OUT-OF-SCOPE###": "out_of_scope"}


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
    """Plays ``scenario.user.script`` turn by turn; a turn's first rule whose regex matches the
    agent's last reply wins, else its ``say``. Past the end of the script it stops."""

    def __init__(self, scenario: Scenario):
        self.script = scenario.user.script
        if not self.script:
            raise ValueError(f"scenario {scenario.id} has no script for the scripted user")
        self.turn = 0

    async def reply(self, seen: list[Exchange]) -> UserReply:
        if self.turn >= len(self.script):
            return UserReply(text="###STOP###", stop="stop")
        step = self.script[self.turn]
        self.turn += 1
        last_agent = next((e.text for e in reversed(seen) if e.role == "assistant"), "")
        for rule in step.rules:
            if re.search(rule.if_agent, last_agent, re.I):
                return parse_stop(rule.say)
        return parse_stop(step.say if step.say is not None else "###STOP###")


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
