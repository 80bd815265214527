"""One trial: a user simulator and an agent (through an arm) talk until the user stops or the
turn limit; the agent's tool calls run against the trial's environment; then the scorers judge.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from policies.messages import Message, SystemMessage, ToolMessage, UserMessage, text_of
from policies.chat_model import ChatModel, ModelError, ModelRequest
from sim_tests.agents import AgentUnderTest, accepts
from sim_tests.arms import Arm, TurnResult, inside_turn
from sim_tests.domains import get_domain
from sim_tests.log import TrialRecord, TurnRecord
from sim_tests.satisfaction import rules_satisfaction
from sim_tests.scenario import Scenario
from sim_tests.scorers import Outcome, Scorer, score
from sim_tests.users import Exchange, UserSimulator

MAX_STEPS = 8  # agent calls (tool rounds) in one user turn before the harness moves on


class TrialError(Exception):
    """The trial could not run to a verdict (the agent endpoint failed or timed out).
    ``unreachable``: no connection to the agent at all, so no other trial can reach it either."""

    def __init__(self, message: str, unreachable: bool = False):
        super().__init__(message)
        self.unreachable = unreachable


@dataclass
class CallPolicy:
    timeout_s: float = 120.0
    retries: int = 1
    backoff_s: float = 0.5


def _bind(agent: AgentUnderTest, env: Any, arm: Arm) -> tuple[ChatModel, bool]:
    """The trial's agent model, and whether the arm already sits in front of the model inside it
    (a self-running agent that took ``wrap``); otherwise the arm wraps each whole agent turn."""
    if not accepts(agent.bind, "wrap"):
        return agent.bind(env), False
    wrapped: list[ChatModel] = []

    def wrap(model: ChatModel) -> ChatModel:
        wrapped.append(model)
        return arm.wrap_model(model)

    model = agent.bind(env, wrap=wrap)
    return model, bool(wrapped)


async def _call(arm: Arm, model: ChatModel, request: ModelRequest, policy: CallPolicy,
                inside: bool = False) -> TurnResult:
    """One arm turn with a timeout; timeouts and 5xx/transport errors are retried."""
    last, unreachable = "", False
    for attempt in range(policy.retries + 1):
        try:
            work = inside_turn(model, request) if inside else arm.turn(model, request)
            return await asyncio.wait_for(work, policy.timeout_s)
        except asyncio.TimeoutError:
            last = f"agent call timed out after {policy.timeout_s:g}s"
        except ModelError as e:
            last = f"agent call failed ({e.status} {e.code}): {e.message}"
            unreachable = e.code == "upstream_unreachable"
            if e.status < 500 and e.status not in (408, 429):
                break
        except ConnectionError as e:  # a Python agent whose own endpoint refused the connection
            last, unreachable = f"agent turn raised {type(e).__name__}: {e!s:.300}", True
        except Exception as e:  # the agent under test crashed: an error of the trial, not of the run
            last = f"agent turn raised {type(e).__name__}: {e!s:.300}"
            break
        if attempt < policy.retries:
            await asyncio.sleep(policy.backoff_s * (attempt + 1))
    raise TrialError(last, unreachable)


def _dump(m: Message) -> dict[str, Any]:
    return m.model_dump(exclude_unset=True, mode="json")


async def run_trial(scenario: Scenario, arm: Arm, agent: AgentUnderTest, user: UserSimulator,
                    trial: int = 0, calls: CallPolicy | None = None, expected_hash: str | None = None,
                    scorers: list[Scorer] | None = None) -> TrialRecord:
    """One dialogue, judged by ``scorers`` (default: ``sim_tests.scorers.DEFAULT``)."""
    calls = calls or CallPolicy()
    started = time.perf_counter()
    domain = get_domain(scenario.domain)
    faults = [scenario.failure] if scenario.failure and scenario.failure.type == "tool_failure" else []
    env = domain.environment(faults)
    tools = domain.tool_schemas()
    history: list[Message] = [SystemMessage(content=domain.policy)]
    transcript: list[dict[str, Any]] = [_dump(history[0])]
    seen: list[Exchange] = []
    record = TrialRecord(scenario_id=scenario.id, label=scenario.label, domain=scenario.domain, arm=arm.name,
                         trait=scenario.trait, trial=trial, status="failed", expected_db_hash=expected_hash)
    ended_by = "turn_limit"
    try:
        model, inside = _bind(agent, env, arm)
        for turn in range(1, scenario.max_turns + 1):
            reply = await user.reply(seen)
            record.user_calls += reply.model_calls
            record.user_turns = turn
            transcript.append({"role": "user", "content": reply.text})
            if reply.stop:
                ended_by = reply.stop
                break
            seen.append(Exchange(role="user", text=reply.text))
            history.append(UserMessage(content=reply.text))
            for _ in range(MAX_STEPS):
                calls_before = len(env.calls)
                t0 = time.perf_counter()
                result = await _call(arm, model, ModelRequest(messages=history, tools=tools), calls, inside)
                record.turns.append(_turn_record(turn, result, (time.perf_counter() - t0) * 1000))
                message = result.response.message
                # A self-running agent used tools inside its call: show them in the transcript.
                for c in env.calls[calls_before:]:
                    transcript += _synthetic(c, len(transcript))
                history.append(message)
                transcript.append(_dump(message))
                if not message.tool_calls:
                    seen.append(Exchange(role="assistant", text=text_of(message)))
                    break
                for call in message.tool_calls:
                    result_text = env.execute(call.function.name, call.function.arguments)
                    tool_message = ToolMessage(tool_call_id=call.id, content=result_text)
                    history.append(tool_message)
                    transcript.append(_dump(tool_message))
    except TrialError as e:
        record.status, record.error, ended_by = "error", str(e), "error"
        record.agent_unreachable = e.unreachable
    except Exception as e:  # the user simulator's model or the agent's set-up failed: no verdict
        record.status, record.error, ended_by = "error", f"{type(e).__name__}: {e!s:.300}", "error"
    record.ended_by = ended_by
    record.messages = transcript
    record.tool_calls = list(env.calls)
    record.final_db_hash = env.hash()
    if record.status != "error":
        outcome = Outcome(scenario, transcript, env.calls, env.hash(), expected_hash, ended_by)
        record.scores = await score(outcome, scorers)
        record.status = "passed" if all(s.passed for s in record.scores if not s.process) else "failed"
        record.satisfaction = [rules_satisfaction(record)]
    record.duration_s = time.perf_counter() - started
    return record


def _turn_record(user_turn: int, result: TurnResult, latency_ms: float) -> TurnRecord:
    usage = result.response.usage or {}
    return TurnRecord(user_turn=user_turn, latency_ms=round(latency_ms, 3), agent_calls=result.agent_calls,
                      rein_calls=result.rein_calls, prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0), diagnosis=result.diagnosis,
                      refinement=result.refinement, notes=result.notes)


def _synthetic(call: Any, n: int) -> list[dict[str, Any]]:
    import json

    call_id = f"inner_{n}"
    args = call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments)
    content = json.dumps({"error": call.error}) if call.error else json.dumps(call.result, default=str)
    return [{"role": "assistant", "content": None, "inner": True,
             "tool_calls": [{"id": call_id, "type": "function", "function": {"name": call.name, "arguments": args}}]},
            {"role": "tool", "tool_call_id": call_id, "content": content, "inner": True}]
