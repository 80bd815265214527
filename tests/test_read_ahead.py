"""The read ahead (middleware/pipeline/read_ahead.py): while the agent writes its reply, the
refiners and the action checks read the dialogue, so the draft's check finds it read.

What is asserted: the reading happens inside the agent's call (after it started, before it answered)
and is not done again after the draft, streamed or not; an agent that answers within 2 ms (or at
once) leaves the reading to the stages after it; a ``prepare`` that raises is a trace event and
nothing else, and a part without ``prepare`` is asked nothing; the reply is the same as without the
read ahead; its time is counted as rein's own when the answer may have waited for it, not when the
agent was still writing long after; a young collection due soon runs there.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import threading

from action_doubles import HoldCalls

from middleware.engine import Engine
from middleware.models import FunctionModel, tool_call
from policies.chat_model import ModelRequest
from policies.loader import load_policy
from policies.messages import parse_messages
from refiners import evidence as evidence_module

ORDER = json.dumps({"order_id": "A1", "status": "shipped", "total": 42.5})
MESSAGES = [{"role": "user", "content": "Where is my order A1?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "get_order", "arguments": json.dumps({"order_id": "A1"})}}]},
            {"role": "tool", "tool_call_id": "c1", "content": ORDER}]
TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}}]
WRONG = "Order A1 has shipped; the total was $45.00."


class Log:
    """What happened, in order: the agent's call starting and ending, the evidence being built."""

    def __init__(self, monkeypatch):
        self.events: list[str] = []
        self.threads: list[str] = []  # where each evidence was built
        built = evidence_module.Evidence.from_context.__func__

        def from_context(cls, ctx):
            self.events.append("evidence")
            self.threads.append(threading.current_thread().name)
            return built(cls, ctx)

        monkeypatch.setattr(evidence_module.Evidence, "from_context", classmethod(from_context))

    def agent(self, reply, wait: bool = True, seconds: float = 0.01):
        async def answer(request):
            self.events.append("agent asked")
            if wait:
                await asyncio.sleep(seconds)  # an upstream: the loop is free while it writes
            self.events.append("agent answered")
            return reply
        return FunctionModel(answer)


def _request(stream: bool = False) -> ModelRequest:
    return ModelRequest(messages=parse_messages(MESSAGES), tools=TOOLS, model="m", stream=stream)


async def test_the_evidence_is_read_while_the_agent_writes_and_not_again(monkeypatch):
    log = Log(monkeypatch)
    state = await Engine(log.agent(WRONG), "structural").pipeline().run(_request())
    assert log.events == ["agent asked", "evidence", "agent answered"]  # none after the draft
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_a_streamed_reply_is_read_ahead_too(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent(WRONG), "structural").pipeline()
    text = []
    async for kind, payload in pipeline.events(_request(stream=True)):
        if kind == "chunk":
            text += [c["delta"].get("content") or "" for c in payload.get("choices") or []]
    # checked sentence by sentence (structural): the evidence is read while the agent writes, once
    assert log.events == ["agent asked", "evidence", "agent answered"]
    assert "".join(text) == "Order A1 has shipped; the total was $42.50."


async def test_an_agent_that_answers_at_once_leaves_the_reading_to_the_plan(monkeypatch):
    log = Log(monkeypatch)
    state = await Engine(log.agent(WRONG, wait=False), "structural").pipeline().run(_request())
    assert log.events == ["agent asked", "agent answered", "evidence"]
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_an_upstream_that_answers_within_two_milliseconds_gets_no_read_ahead(monkeypatch):
    log = Log(monkeypatch)
    state = await Engine(log.agent(WRONG, seconds=0), "structural").pipeline().run(_request())
    assert log.events == ["agent asked", "agent answered", "evidence"]  # a cache, a replay: nothing read for naught
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_a_read_ahead_long_before_the_answer_is_not_rein_time(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent(WRONG, seconds=0.08), "structural").pipeline()

    def slow(ctx):
        import time
        time.sleep(0.02)  # done ~58 ms before the agent answers: it delayed nothing

    monkeypatch.setattr(pipeline.refinery, "prepare", slow)
    state = await pipeline.run(_request())
    assert state["upstream_ms"] >= 75


async def test_a_read_ahead_that_fails_is_a_trace_event_and_nothing_else(monkeypatch):
    from middleware.pipeline import read_ahead

    log = Log(monkeypatch)
    pipeline = Engine(log.agent(WRONG), "structural").pipeline()
    events = []
    monkeypatch.setattr(read_ahead.tracing, "event", lambda name, attrs: events.append((name, attrs["reason"])))

    def broken(ctx):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(pipeline.refinery, "prepare", broken)
    state = await pipeline.run(_request())
    assert events == [("rein.read_ahead.skipped", "RuntimeError: disk on fire")]
    # no note: x-rein-fail-open does not depend on how fast the agent answered (plan read it itself)
    assert not any("read_ahead" in n for n in state.get("notes") or [])
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_a_part_without_prepare_is_asked_nothing_ahead(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent(WRONG), "structural").pipeline()

    class Bare:  # a refinery that does not subclass the protocol, as a test or a user may swap in
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            if name == "prepare":
                raise AttributeError(name)
            return getattr(self.inner, name)

    pipeline.refinery = Bare(pipeline.refinery)
    state = await pipeline.run(_request())
    assert log.events == ["agent asked", "agent answered", "evidence"]
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_the_read_ahead_is_rein_time_not_the_agents(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent(WRONG), "structural").pipeline()

    def slow(ctx):
        import time
        time.sleep(0.05)  # longer than the agent takes: rein delayed the answer

    monkeypatch.setattr(pipeline.refinery, "prepare", slow)
    state = await pipeline.run(_request())
    assert state["upstream_ms"] < 40  # the agent took ~10 ms of the ~50 ms its call lasted


async def test_the_action_checks_read_the_dialogue_while_the_agent_writes(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent(tool_call("cancel", {"allowed": True})), "structural").pipeline()
    inception = HoldCalls(load_policy("structural"), tool="cancel")
    seen = []
    inception.prepare = lambda messages, tools, now=None: seen.append((list(log.events), len(messages), now))
    pipeline.inception = inception
    state = await pipeline.run(_request())
    assert seen == [(["agent asked", "evidence"], 3, None)]  # after the refiners' read, before the answer
    assert [c.function.name for c in state["final"].message.tool_calls] == ["cancel"]


async def test_the_action_check_takes_what_the_read_ahead_of_its_dialogue_found(monkeypatch):
    """The pipeline reads ahead and then checks the draft on the same parsed messages: the check
    does not look the dialogue up again (``inception.actions.engine._taken``)."""
    log = Log(monkeypatch)
    tools = [*TOOLS, {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}}]
    pipeline = Engine(log.agent(tool_call("cancel_order", {"order_id": "A1"})), "structural").pipeline()
    from inception.actions import engine as action_engine
    taken = []
    monkeypatch.setattr(action_engine, "_taken", lambda *a, took=action_engine._taken: taken.append(took(*a)) or taken[-1])
    state = await pipeline.run(ModelRequest(messages=parse_messages(MESSAGES), tools=tools, model="m"))
    assert len(taken) == 1 and taken[0] is not None
    assert [c.function.name for c in state["final"].message.tool_calls] == ["cancel_order"]


async def test_no_read_ahead_when_nothing_would_read_the_dialogue(monkeypatch):
    log = Log(monkeypatch)
    pipeline = Engine(log.agent("Hello!"), "passthrough").pipeline()
    calls = []
    monkeypatch.setattr(pipeline.refinery, "prepare", lambda ctx: calls.append(ctx))
    state = await pipeline.run(_request())
    assert calls == [] and state["final"].message.content == "Hello!"


@contextlib.contextmanager
def _collector(young: int, middle: int):
    """The collector on, with these thresholds and both young generations just collected: the
    generations of the passes that start, in order; everything as it was after."""
    import gc

    kept, enabled, passes = gc.get_threshold(), gc.isenabled(), []

    def seen(phase, info):
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(seen)
    try:
        gc.enable()  # (another test may leave it off: the passes are asked of a running collector)
        gc.set_threshold(young, middle, kept[2])
        gc.collect(1)
        passes.clear()
        yield passes
    finally:
        gc.callbacks.remove(seen)
        gc.set_threshold(*kept)
        if not enabled:
            gc.disable()


def test_a_young_collection_due_soon_runs_while_the_agent_writes():
    import gc

    from middleware.pipeline.read_ahead import YOUNG_PASS_WITHIN, young_pass_if_due
    with _collector(700, 10) as passes:
        young_pass_if_due()  # generation 1 just collected: not due
        assert passes == []
        while gc.get_count()[1] < 10 - YOUNG_PASS_WITHIN:  # generation-0 passes until one is near
            junk = [[] for _ in range(1000)]  # noqa: F841
        passes.clear()
        young_pass_if_due()
        assert passes == [1] and gc.get_count()[1] == 0


def test_a_young_generation_half_full_is_collected_while_the_agent_writes():
    """The stages after the draft then start with an empty generation 0: no pass lands in the check."""
    import gc

    from middleware.pipeline.read_ahead import YOUNG_HALF, young_pass_if_due
    held: list[list] = []
    with _collector(1000, 1000) as passes:
        while gc.get_count()[0] < 1000 * YOUNG_HALF - 60:  # below half: left to the automatic pass
            held.append([])
        young_pass_if_due()
        assert passes == []
        while gc.get_count()[0] < 1000 * YOUNG_HALF + 10:  # past half
            held.append([])
        young_pass_if_due()
        assert passes == [0] and gc.get_count()[0] < 50


def _big(stream: bool = False) -> ModelRequest:
    """A dialogue past OFFLOAD_CHARS, ending in the order lookup."""
    from refiners.refinery import OFFLOAD_CHARS

    filler = [{"role": "user", "content": "Some background. " * 100}, {"role": "assistant", "content": "Noted."}]
    messages = filler * (OFFLOAD_CHARS // 1700 + 1) + MESSAGES
    return ModelRequest(messages=parse_messages(messages), tools=TOOLS, model="m", stream=stream)


async def test_a_dialogue_too_big_for_the_loop_is_read_ahead_in_a_worker_thread(monkeypatch):
    """Past OFFLOAD_CHARS the read ahead goes to a worker thread while the agent writes; the plan
    waits for it instead of reading the dialogue again, and the reply is checked against it."""
    log = Log(monkeypatch)
    state = await Engine(log.agent(WRONG, seconds=0.05), "structural").pipeline().run(_big())
    assert len(log.threads) == 1 and log.threads[0].startswith("rein-read-ahead")  # read once, off the loop
    assert state["final"].message.content == "Order A1 has shipped; the total was $42.50."


async def test_a_big_dialogue_streamed_is_read_once(monkeypatch):
    """A stream checked sentence by sentence starts reading a big dialogue in a thread when it
    starts; the read ahead finds it being read and does not read it a second time."""
    log = Log(monkeypatch)
    text = []
    async for kind, payload in Engine(log.agent(WRONG, seconds=0.05), "structural").pipeline().events(_big(stream=True)):
        if kind == "chunk":
            text += [c["delta"].get("content") or "" for c in payload.get("choices") or []]
    assert len(log.threads) == 1 and "".join(text) == "Order A1 has shipped; the total was $42.50."
