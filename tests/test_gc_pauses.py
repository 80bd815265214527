"""Memory without pauses (issue 24): what `rein serve` does with the cyclic collector, held in-process.

- a thousand requests (clean turns and turns with a failing tool result, which rein diagnoses and
  plants a plan for) cause no full (generation 2) collection while any request is in flight, and
  the idle collector runs full collections between them;
- the request path makes no reference cycles: with the collector off, a few hundred turns leave
  nothing for a collection to find (garbage is freed by reference count the moment a turn ends).
"""
from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import orjson
import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel
from middleware.proxy import create_app
from middleware.proxy.ops import gc_schedule

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look an order up.",
                                           "parameters": {"type": "object", "properties": {
                                               "order_id": {"type": "string"}}, "required": ["order_id"]}}}]


def _body(k: int) -> bytes:
    """A support dialogue; every third one's tool result is an error (a diagnosis, a planted plan)."""
    result = "Error: upstream service timed out, try again later" if k % 3 == 0 else orjson.dumps(
        {"order_id": f"A{k}", "status": "shipped", "total": 12.5 + k, "eta": "2024-05-17"}).decode()
    messages = [{"role": "system", "content": "You are the support agent of an online shop."},
                {"role": "user", "content": f"Where is my order A{k}? It was due on Monday."},
                {"role": "assistant", "content": None, "tool_calls": [{"id": f"c{k}", "type": "function", "function": {
                    "name": "get_order", "arguments": orjson.dumps({"order_id": f"A{k}"}).decode()}}]},
                {"role": "tool", "tool_call_id": f"c{k}", "content": result}]
    return orjson.dumps({"model": "m", "messages": messages, "tools": TOOLS})


def _reply(request: Any) -> str:
    return "Your order A1 shipped and should arrive on Friday, May 17."


async def _call(app: Any, body: bytes) -> list[dict[str, Any]]:
    """One POST straight to the ASGI app: no client library's own garbage in the process's counts."""
    sent: list[dict[str, Any]] = []
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200, sent
    return sent


@pytest.fixture
def served():
    """The app as `rein serve` builds it (serving=True: start-up heap frozen, thresholds set); the
    test session's collector settings are put back afterwards."""
    threshold = gc.get_threshold()
    engine = Engine(FunctionModel(_reply), "structural")
    app = create_app(Settings(policy="structural"), engine, serving=True)
    try:
        yield app
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def test_a_thousand_requests_cause_no_full_collection_while_one_is_in_flight(served):
    collector: gc_schedule.IdleCollector = served.state.gc
    collector.idle_every_s = 0.05  # short bursts with gaps: let idle moments come within the test
    assert gc.get_threshold()[2] == gc_schedule.NO_AUTO_FULL
    in_flight = 0
    full_in_flight: list[float] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] == 2:
            if phase == "start":
                started[0] = time.perf_counter()
            elif in_flight:
                full_in_flight.append((time.perf_counter() - started[0]) * 1000)

    async def one(k: int) -> None:
        nonlocal in_flight
        in_flight += 1
        try:
            await _call(served, _body(k))
        finally:
            in_flight -= 1

    collector.start()
    gc.callbacks.append(watch)
    try:
        for burst in range(20):  # 20 bursts of 50 concurrent requests, a short gap after each
            await asyncio.gather(*(one(burst * 50 + i) for i in range(50)))
            await asyncio.sleep(0.12)
    finally:
        gc.callbacks.remove(watch)
        await collector.stop()
    idle_runs = [ms for ms, forced in collector.runs if not forced]
    print(f"\nfull collections between requests: {len(idle_runs)} (longest "
          f"{max(idle_runs, default=0):.1f} ms); with a request in flight: {len(full_in_flight)}")
    assert full_in_flight == []
    assert idle_runs, "the idle collector never ran a full collection"


def test_the_idle_collector_waits_for_no_request_in_flight_and_forces_after_its_longest_wait():
    busy = [3]
    collector = gc_schedule.IdleCollector(lambda: busy[0], idle_every_s=1.0, longest_s=10.0)
    collector.last = 100.0
    gc.collect(1)  # something promoted to the oldest generation since the last full pass
    if gc.get_count()[2] == 0:
        pytest.skip("this interpreter reports no generation-1 pass since the last full one")
    assert collector.due(100.5) is None       # too soon
    assert collector.due(105.0) is None       # requests in flight
    busy[0] = 0
    assert collector.due(105.0) == "idle"
    busy[0] = 3
    assert collector.due(111.0) == "forced"   # never idle: a full pass all the same, cycles must go


async def test_the_request_path_makes_no_reference_cycles(served):
    for k in range(30):  # warm-up: first-call imports, caches
        await _call(served, _body(k))
    gc.collect()
    gc.disable()
    try:
        for k in range(300):
            await _call(served, _body(1000 + k))
        found = gc.collect()
    finally:
        gc.enable()
    # With the collector off nothing is freed but by reference count: what a pass finds now is cyclic
    # garbage the 300 turns (a third of them diagnosed, planned and re-asked) left behind.
    assert found == 0, f"{found} objects in reference cycles after 300 requests"
