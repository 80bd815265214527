"""Young collections off a request that runs alone (issue 24, middleware/proxy/ops/gc_schedule.py).

One request at a time through the app as `rein serve` builds it: no collection of any generation
runs while a request is in flight, the young passes run between requests instead. Several at once:
the young threshold is CPython's while they run (short passes, as before).
"""
from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

import orjson
import pytest
from test_gc_pauses import TOOLS, _call

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel
from middleware.proxy import create_app
from middleware.proxy.ops import gc_schedule


def _body(k: int) -> bytes:
    """A support dialogue with a few tool results: a few thousand objects parsed and validated."""
    messages = [{"role": "system", "content": "You are the support agent of an online shop."},
                {"role": "user", "content": f"Where are my orders A{k} and B{k}?"}]
    for i in range(6):
        messages.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"c{k}-{i}", "type": "function",
            "function": {"name": "get_order", "arguments": orjson.dumps({"order_id": f"A{k}-{i}"}).decode()}}]})
        messages.append({"role": "tool", "tool_call_id": f"c{k}-{i}", "content": orjson.dumps(
            {"order_id": f"A{k}-{i}", "status": "shipped", "items": [{"sku": f"S{j}", "qty": j} for j in range(8)]}
        ).decode()})
    return orjson.dumps({"model": "m", "messages": messages, "tools": TOOLS})


@pytest.fixture
def served():
    threshold = gc.get_threshold()
    seen: list[tuple[int, int]] = []  # (requests in flight, young threshold) as each agent call saw them
    app_box: list[Any] = []

    async def reply(request: Any) -> str:
        await asyncio.sleep(0)  # requests sent together are in flight together
        seen.append((app_box[0].young.active, gc.get_threshold()[0]))
        return "Both orders shipped."

    app = create_app(Settings(policy="structural"), Engine(FunctionModel(reply), "structural"), serving=True)
    app.middleware_stack = app.build_middleware_stack()
    app_box.append(_young(app))
    try:
        yield app, seen
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _young(app: Any) -> gc_schedule.YoungPasses:
    layer = app.middleware_stack
    while not isinstance(layer, gc_schedule.YoungPasses):
        layer = layer.app
    app.young = layer
    return app


async def test_one_request_at_a_time_runs_no_collection_while_in_flight(served):
    app, seen = served
    for k in range(20):  # warm-up: first-call imports, caches
        await _call(app, _body(k))
        await asyncio.sleep(0)
    in_flight = [0]
    inside: list[tuple[int, float]] = []
    between: list[int] = []
    started = [0.0]

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif in_flight[0]:
            inside.append((info["generation"], (time.perf_counter() - started[0]) * 1000))
        else:
            between.append(info["generation"])

    async def one(k: int) -> None:
        in_flight[0] += 1
        try:
            await _call(app, _body(k))
        finally:
            in_flight[0] -= 1
        await asyncio.sleep(0)  # the idle moment before the next request: the young pass runs here

    gc.callbacks.append(watch)
    try:
        for k in range(300):
            await one(100 + k)
    finally:
        gc.callbacks.remove(watch)
    print(f"\ncollections between requests: {len(between)}; inside: {inside}")
    assert inside == []
    assert between, "no young pass ran between requests"
    assert {young for active, young in seen[20:]} == {app.young.young * gc_schedule.SOLO_YOUNG}


async def test_requests_in_flight_together_run_with_cpythons_young_threshold(served):
    app, seen = served
    await asyncio.gather(*(_call(app, _body(k)) for k in range(20)))
    together = [young for active, young in seen if active >= 2]
    assert together and set(together) == {app.young.young}
    await asyncio.sleep(0)
    assert app.young.active == 0
