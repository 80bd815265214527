"""What a turn waits on the event loop besides its upstream (issue 24): under load each loop pass of
rein's own time waits behind the other requests' work (``bench/load.py --split``: at c=50 one pass
is ~40 ms of own time), so passes, more than CPU, make the own-time tail.

With eager tasks (Python 3.12+, as ``rein serve`` runs there: middleware/proxy/ops/eager_tasks.py)
a clean turn takes no pass beyond its agent's waits, and a turn handed to the LangGraph graph one:
LangGraph runs each node in a task of its own (``RunnableSeq``), so the agent node, having waited
for its answer, hands its result back one pass later. Nodes that do not wait cost none. Without
eager tasks (3.11) a node costs about five (tests/test_pipeline_graph.py, bench/load_graph.py).
``rein serve`` has LangGraph await its nodes inline (``REIN_INLINE_NODES=0`` turns it off): no pass at all.
"""
from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from langgraph._internal import _runnable

from middleware.engine import Engine
from middleware.models import FunctionModel
from middleware.proxy.ops import eager_tasks
from middleware.proxy.ops.loop_probe import loop_passes
from policies.chat_model import ModelRequest
from policies.messages import parse_messages

eager = pytest.mark.skipif(not eager_tasks.available(), reason="eager tasks: Python 3.12+")

FAILED = [{"role": "user", "content": "Where is my order A1?"},
          {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
              "name": "get_order", "arguments": '{"order_id": "A1"}'}}]},
          {"role": "tool", "tool_call_id": "c1", "content": '{"status": 500, "message": "inventory unavailable"}'}]
CLEAN = [{"role": "user", "content": "Where is my order A1?"}]


async def _answer(request: ModelRequest) -> str:
    await asyncio.sleep(0)  # an upstream's answer arrives on a later pass than its call
    return "Sorry, it is not available now."


async def _turn(messages: list[dict]) -> tuple[dict, int, int]:
    """The turn's state, its loop passes, and its agent's calls (one pass each)."""
    agent = FunctionModel(_answer)
    pipeline = Engine(agent, "structural").pipeline()
    request = ModelRequest(messages=parse_messages(messages), model="m")
    box: dict = {}

    async def run() -> None:
        box["state"] = await pipeline.run(request)

    loop = asyncio.get_running_loop()
    assert eager_tasks.use(loop)
    try:
        passes = (await loop_passes(run()))[1]
    finally:
        loop.set_task_factory(None)
    return box["state"], passes, len(agent.requests)


@eager
async def test_a_turn_through_the_graph_waits_one_pass_more_than_its_agent():
    state, passes, calls = await _turn(FAILED)
    assert state["resume"] == "incept"  # handed to the graph: a plan to plant
    assert passes == calls + 1, (passes, calls)


@eager
async def test_a_clean_turn_waits_only_for_its_agent():
    state, passes, calls = await _turn(CLEAN)
    assert "resume" not in state
    assert passes == calls == 1, (passes, calls)


@eager
async def test_with_nodes_inline_a_turn_through_the_graph_waits_only_for_its_agent():
    eager_tasks.inline_nodes(True)
    try:
        state, passes, calls = await _turn(FAILED)
    finally:
        eager_tasks.inline_nodes(False)
    assert state["resume"] == "incept" and state["final"].message.content
    assert passes == calls, (passes, calls)


def test_nodes_inline_while_serving_unless_turned_off(monkeypatch):
    assert _runnable.ASYNCIO_ACCEPTS_CONTEXT is True  # LangGraph's switch is where rein sets it
    for asked in (None, "1", "0"):
        if asked:
            monkeypatch.setenv("REIN_INLINE_NODES", asked)
        else:
            monkeypatch.delenv("REIN_INLINE_NODES", raising=False)
        app = FastAPI()
        eager_tasks.install(app)
        with TestClient(app):
            assert _runnable.ASYNCIO_ACCEPTS_CONTEXT is (asked == "0")
        assert _runnable.ASYNCIO_ACCEPTS_CONTEXT is True  # reset at shutdown: an SDK graph later in the process is as LangGraph runs it


def test_a_served_graph_turn_streamed_and_not_with_nodes_inline(monkeypatch):
    """As ``rein serve`` runs (create_app(serving=True): nodes inline from start-up), a turn with a
    plan to plant goes through the graph and answers, streamed and not; the switch is reset after."""
    import json

    from middleware.config import Settings
    from middleware.models import ScriptedModel
    from middleware.proxy import create_app

    monkeypatch.delenv("REIN_INLINE_NODES", raising=False)
    settings = Settings(policy="structural")
    engine = Engine(ScriptedModel(["Sorry, the order service is down."], cycle=True), settings.policy)
    with TestClient(create_app(settings, engine, serving=True)) as client:
        assert _runnable.ASYNCIO_ACCEPTS_CONTEXT is False
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": FAILED})
        assert r.status_code == 200 and r.headers["x-rein-diagnosis"] == "tool_failure"
        assert r.json()["choices"][0]["message"]["content"] == "Sorry, the order service is down."
        with client.stream("POST", "/v1/chat/completions", json={"model": "m", "messages": FAILED, "stream": True}) as s:
            lines = [x for x in s.iter_lines() if x.startswith("data: ")]
        text = "".join((json.loads(x[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
                       for x in lines if x != "data: [DONE]")
        assert lines[-1] == "data: [DONE]" and text == "Sorry, the order service is down."
    assert _runnable.ASYNCIO_ACCEPTS_CONTEXT is True
