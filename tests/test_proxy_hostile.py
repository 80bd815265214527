"""Hostile bodies on every route (issue 20, defects 3 and 4): each is refused with a 4xx in the
route's own error shape, names the field or the limit, says nothing of rein's internals, and never
reaches the agent; bodies at the structural limits are answered or refused fast."""
from __future__ import annotations

import asyncio
import gc
import json
import re
import time

import orjson
import pytest
from fake_upstream import asgi_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from middleware.proxy.routes.limits import MAX_BRACKETS, MAX_MESSAGES, MAX_PARTS, MAX_PARTS_PER_MESSAGE, MAX_TOOLS

HI = [{"role": "user", "content": "hi"}]
# What no client-visible byte may carry: a Python exception's name or message, an address.
INTERNALS = re.compile(r"[A-Z][A-Za-z]*(Error|Exception)\b|unhashable|got multiple values|object has no attribute|"
                       r"not subscriptable|(?<![\w.])\d{1,3}(\.\d{1,3}){3}(?!\d|\.\d)|localhost:\d+|Traceback")


def nest(depth: int):
    """A stand-in for an object nested ``depth`` levels, spliced in by ``dumps`` (json.dumps itself
    stops near 1,000 levels, orjson at 255)."""
    return f"@@DEEP{depth}@@"


def dumps(body) -> str:
    return re.sub(r'"@@DEEP(\d+)@@"', lambda m: '{"a": ' * int(m.group(1)) + "{}" + "}" * int(m.group(1)),
                  json.dumps(body))


TOOL_USE = {"role": "assistant", "content": [{"type": "tool_use", "id": "tu_1", "name": "f", "input": {}}]}
MSG = {"model": "m", "max_tokens": 16}

# (route, body, the field the error must name)
REPRODUCERS = {
    "messages metadata 5": ("/v1/messages", {**MSG, "messages": HI, "metadata": 5}, "metadata"),
    "messages metadata 'x'": ("/v1/messages", {**MSG, "messages": HI, "metadata": "x"}, "metadata"),
    "tool_result with tool_call_id": ("/v1/messages", {**MSG, "messages": [HI[0], TOOL_USE, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "tu_1", "content": "ok", "tool_call_id": "x"}]}]}, "tool_call_id"),
    "tool_use with function": ("/v1/messages", {**MSG, "messages": [HI[0], {"role": "assistant", "content": [
        {"type": "tool_use", "id": "tu_1", "name": "f", "input": {}, "function": {"name": "g"}}]}]}, "function"),
    "assistant tool_calls []": ("/v1/messages", {**MSG, "messages": [HI[0], {"role": "assistant", "content": [
        {"type": "text", "text": "ok"}], "tool_calls": []}]}, "tool_calls"),
    "system tool_result numeric id": ("/v1/messages", {**MSG, "messages": HI, "system": [
        {"type": "tool_result", "tool_use_id": 5, "content": "x"}]}, "system"),
    "tool_use.input 1,000 deep": ("/v1/messages", {**MSG, "messages": [HI[0], {"role": "assistant", "content": [
        {"type": "tool_use", "id": "tu_1", "name": "f", "input": nest(1000)}]}]}, "messages"),
    "role 1,000 deep": ("/v1/messages", {**MSG, "messages": [{"role": nest(1000), "content": "hi"}]}, "messages"),
    "text.format 'json'": ("/v1/responses", {"model": "m", "input": "hi", "text": {"format": "json"}}, "text.format"),
    "allowed_tools [1]": ("/v1/responses", {"model": "m", "input": "hi", "tool_choice": {
        "type": "allowed_tools", "tools": [1]}}, "tool_choice"),
    "tool_choice 1,000 deep": ("/v1/responses", {"model": "m", "input": "hi", "tool_choice": nest(1000)}, "tool_choice"),
    "text 1,000 deep": ("/v1/responses", {"model": "m", "input": "hi", "text": nest(1000)}, "text"),
    "input[0].role 1,000 deep": ("/v1/responses", {"model": "m", "input": [{"role": nest(1000), "content": "hi"}]},
                                 "input"),
}


def app_with(policy: str, **settings):
    agent = ScriptedModel(["fine"], cycle=True)
    return create_app(Settings(policy=policy, **settings), Engine(agent, policy, rein_model=ScriptedModel([]))), agent


def error_of(route: str, resp) -> tuple[str, str | None]:
    """(message, param) of an error body in the route's own shape."""
    body = resp.json()
    if route == "/v1/messages":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
        return body["error"]["message"], None
    assert set(body) == {"error"} and body["error"]["code"], body
    return body["error"]["message"], body["error"].get("param")


def clean(text: str) -> None:
    assert not INTERNALS.search(text), text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("policy", ["structural", "default", "passthrough"])
@pytest.mark.parametrize("case", list(REPRODUCERS))
async def test_reproducers_are_4xx_naming_the_field(case, policy, stream):
    route, body, field = REPRODUCERS[case]
    app, agent = app_with(policy)
    async with asgi_client(app) as c:
        r = await c.post(route, content=dumps({**body, "stream": stream}), headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text[:300]
    message, param = error_of(route, r)
    assert field in message, message
    if param is not None:
        assert param.startswith(field.split(".")[0]), param
    clean(r.text)
    assert not agent.requests


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/responses", "/v1/messages"])
async def test_the_depth_limit_holds_on_every_route(route):
    app, agent = app_with("structural")
    bodies = {"/v1/chat/completions": {"messages": HI, "x": nest(70)},
              "/v1/responses": {"input": "hi", "x": nest(70)},
              "/v1/messages": {**MSG, "messages": HI, "x": nest(70)}}
    async with asgi_client(app) as c:
        r = await c.post(route, content=dumps(bodies[route]), headers={"content-type": "application/json"})
        past_parser = await c.post(route, content=b'{"x": ' + b"[" * 1100 + b"]" * 1100 + b"}",
                                   headers={"content-type": "application/json"})
    for resp in (r, past_parser):
        assert resp.status_code == 400, resp.text[:300]
        message, _ = error_of(route, resp)
        assert "64 levels" in message, message
        clean(resp.text)
    assert not agent.requests


async def test_a_tool_result_answering_no_tool_use_is_refused_on_messages():
    app, agent = app_with("structural")
    orphan = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_9", "content": "done"}]}
    async with asgi_client(app) as c:
        r = await c.post("/v1/messages", json={**MSG, "messages": [HI[0], TOOL_USE, orphan]})
        ok = await c.post("/v1/messages", json={**MSG, "messages": [HI[0], TOOL_USE, {
            "role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu_1", "content": "done"}]}]})
    assert r.status_code == 400, r.text
    message, _ = error_of("/v1/messages", r)
    assert "tu_9" in message and "messages.2.content.0.tool_use_id" in message
    assert ok.status_code == 200, ok.text
    assert len(agent.requests) == 1


# ---- structural limits before model validation (defect 3) -----------------------------------------
def many_messages(n: int) -> list:
    return [{"role": "user", "content": f"m{i}"} for i in range(n)]


BIG = {  # (route, body, the limit's name in the message)
    "chat: a million integers as content": ("/v1/chat/completions",
                                            {"messages": [{"role": "user", "content": list(range(1_000_000))}]},
                                            f"{MAX_PARTS_PER_MESSAGE} parts"),
    "chat: 200,000 user messages": ("/v1/chat/completions", {"messages": many_messages(200_000)},
                                    f"{MAX_BRACKETS} JSON arrays and objects"),  # counted before parsing
    "chat: one message past the limit": ("/v1/chat/completions", {"messages": many_messages(MAX_MESSAGES + 1)},
                                         f"{MAX_MESSAGES} messages"),
    "chat: total parts": ("/v1/chat/completions", {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "x"}] * MAX_PARTS_PER_MESSAGE}] * (
            MAX_PARTS // MAX_PARTS_PER_MESSAGE + 1)}, f"{MAX_PARTS} content parts"),
    "responses: a million integers as content": ("/v1/responses", {"input": [
        {"role": "user", "content": list(range(1_000_000))}]}, f"{MAX_PARTS_PER_MESSAGE} parts"),
    "responses: 200,000 items": ("/v1/responses", {"input": many_messages(200_000)},
                                 f"{MAX_BRACKETS} JSON arrays and objects"),
    "responses: one item past the limit": ("/v1/responses", {"input": many_messages(MAX_MESSAGES + 1)},
                                           f"{MAX_MESSAGES} messages"),
    "messages: a million integers as content": ("/v1/messages", {**MSG, "messages": [
        {"role": "user", "content": list(range(1_000_000))}]}, f"{MAX_PARTS_PER_MESSAGE} parts"),
    "messages: 200,000 user messages": ("/v1/messages", {**MSG, "messages": many_messages(200_000)},
                                        f"{MAX_BRACKETS} JSON arrays and objects"),
    "messages: one message past the limit": ("/v1/messages", {**MSG, "messages": many_messages(MAX_MESSAGES + 1)},
                                             f"{MAX_MESSAGES} messages"),
    "tools past the limit": ("/v1/chat/completions", {"messages": HI, "tools": [
        {"type": "function", "function": {"name": "f"}}] * (MAX_TOOLS + 1)}, f"{MAX_TOOLS} tools"),
}


@pytest.mark.parametrize("case", list(BIG))
async def test_structural_limits_answer_fast_and_name_the_limit(case):
    route, body, limit = BIG[case]
    raw = orjson.dumps(body)
    assert len(raw) <= 8 * 1024 * 1024  # inside the body limit: only the structural limits stop it
    app, agent = app_with("structural")
    async with asgi_client(app) as c:
        start = time.process_time()
        r = await c.post(route, content=raw, headers={"content-type": "application/json"})
        cpu = time.process_time() - start
    assert r.status_code in (400, 413), r.text[:300]
    message, _ = error_of(route, r)
    assert limit in message, message
    assert cpu < 1.0, f"{cpu:.2f} s of CPU"  # was 9.5 s (a million integers) and 11 s (200,000 messages)
    assert not agent.requests


async def test_a_large_body_is_validated_off_the_event_loop(monkeypatch):
    """A large body is parsed and validated in a worker thread, a chunk of messages at a time, so
    the loop runs meanwhile: no pause of the loop is more than a fraction of the request's time
    (before, the loop was blocked from the first byte parsed to the last message validated)."""
    import threading

    from middleware.proxy.routes import validate

    threads: list[bool] = []
    parse = validate.parse_body

    def recording(raw):
        threads.append(threading.current_thread() is threading.main_thread())
        return parse(raw)

    monkeypatch.setattr(validate, "parse_body", recording)
    monkeypatch.setattr("middleware.proxy.routes.chat.parse_body", recording)
    app, agent = app_with("passthrough")  # no stage runs: what is measured is the parse
    parts = [{"type": "text", "text": "word " * 20}, {"type": "text", "text": "w"}]
    body = orjson.dumps({"messages": [{"role": "user", "content": parts}] * MAX_MESSAGES})
    async with asgi_client(app) as c:
        assert (await c.post("/v1/chat/completions", json={"messages": HI})).status_code == 200
        gc.collect()
        gc.freeze()  # as `rein serve` does: the session's heap out of the collector's full passes
        try:
            ticks: list[float] = []

            async def probe():
                while True:
                    ticks.append(time.perf_counter())
                    await asyncio.sleep(0.002)

            prober = asyncio.create_task(probe())
            await asyncio.sleep(0.01)
            start = time.perf_counter()
            r = await c.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
            ticks.append(time.perf_counter())  # a pause still running when the answer came counts too
            took = time.perf_counter() - start
            prober.cancel()
        finally:
            gc.unfreeze()
    assert r.status_code == 200, r.text[:300]
    assert threads == [True, False]  # the small body inline, the large one in a worker thread
    stall = max(b - a for a, b in zip(ticks, ticks[1:]) if b > start)
    assert stall < 0.5 * took, f"the loop paused {stall * 1000:.0f} ms of a {took * 1000:.0f} ms request"


def test_the_collector_pause_restores_what_it_found():
    from middleware.proxy.routes.limits import gc_paused

    assert gc.isenabled()
    with gc_paused():
        with gc_paused():  # two large bodies at once, in two worker threads
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()  # a server that runs its collections itself (gc_schedule) keeps the collector off
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
