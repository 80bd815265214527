"""Streaming through the proxy, read as SSE by the official openai client over loopback:
with refinement planned no unrefined token leaves rein; without it, chunks pass one by one."""
from __future__ import annotations

import asyncio
import json
import time

import httpx
import openai
import pytest
import uvicorn
from fake_upstream import free_port

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models.chunks import chunk, new_id
from middleware.models.testing import as_response
from middleware.proxy import create_app

ORDER = {"order_id": "A1234", "status": "shipped", "delivery_date": "2025-03-14"}
WITH_TOOLS = [
    {"role": "user", "content": "Where is my order A1234?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": json.dumps(ORDER)},
]
PLAIN = [{"role": "user", "content": "Tell me a joke about cats."}]


class PacedModel:
    """Streams given text pieces; ``gate`` (if set) must open before the second piece is sent."""

    name = "paced"

    def __init__(self, pieces: list[str], gated: bool = False, tool_call: dict | None = None):
        self.pieces = pieces
        self.gate = asyncio.Event() if gated else None
        self.tool_call = tool_call
        self.finished_at: float | None = None

    async def complete(self, request):
        return as_response("".join(self.pieces), self.name)

    async def stream(self, request):
        id_ = new_id()
        yield chunk(id_, self.name, {"role": "assistant", "content": ""})
        for i, piece in enumerate(self.pieces):
            if i == 1 and self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), 3)  # times out if rein held the first piece
            yield chunk(id_, self.name, {"content": piece})
            await asyncio.sleep(0.02)
        if self.tool_call:
            yield chunk(id_, self.name, {"tool_calls": [{"index": 0, **self.tool_call}]})
            if self.gate is not None:
                await asyncio.wait_for(self.gate.wait(), 3)
        self.finished_at = time.monotonic()
        yield chunk(id_, self.name, {}, "tool_calls" if self.tool_call else "stop")


class LiveServer:
    def __init__(self, app):
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, lifespan="off",
                                                    log_level="warning"))

    async def __aenter__(self):
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    async def __aexit__(self, *exc):
        self.server.should_exit = True
        await asyncio.wait_for(self.task, 10)


def serve(model, policy="default"):
    return LiveServer(create_app(Settings(policy=policy), Engine(model, policy)))


async def test_planned_refinement_sends_only_the_refined_reply():
    model = PacedModel(["Your order A1234 ", "was delivered ", "on March 15."])
    async with serve(model) as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="m", messages=WITH_TOOLS, stream=True)
        pieces, first_at = [], None
        async for event in stream:
            delta = event.choices[0].delta.content if event.choices else None
            if delta:
                first_at = first_at or time.monotonic()
                pieces.append(delta)
        await client.close()
    assert "".join(pieces) == "Your order A1234 was shipped on March 14."
    assert not any("delivered" in p or "15" in p for p in pieces)  # no unrefined token left rein
    assert first_at >= model.finished_at  # nothing went out before the whole draft was in
    assert len(pieces) > 1  # the refined reply still streams in pieces


async def test_refined_stream_reports_what_changed():
    model = PacedModel(["Your order A1234 ", "was delivered ", "on March 15."])
    async with serve(model) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            async with c.stream("POST", "/v1/chat/completions",
                                json={"model": "m", "messages": WITH_TOOLS, "stream": True}) as r:
                body = (await r.aread()).decode()
    assert r.headers["x-rein-policy"] == "default"
    assert ': rein {' in body and '"x-rein-refined":"factuality"' in body  # the trailer says so


async def test_pass_through_streams_chunk_by_chunk():
    model = PacedModel(["Why did ", "the cat ", "sit on the laptop?"], gated=True)
    async with serve(model) as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="m", messages=PLAIN, stream=True)
        pieces = []
        async for event in stream:
            delta = event.choices[0].delta.content if event.choices else None
            if delta:
                pieces.append(delta)
                model.gate.set()  # the upstream sends its second piece only once the first arrived here
        await client.close()
    assert pieces == ["Why did ", "the cat ", "sit on the laptop?"]


async def test_tool_call_chunks_are_never_held():
    call = {"id": "call_9", "type": "function", "function": {"name": "refund", "arguments": "{\"order_id\": \"A1234\"}"}}
    model = PacedModel(["Let me refund that."], gated=True, tool_call=call)
    async with serve(model) as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="m", messages=WITH_TOOLS, stream=True)
        names, text = [], []
        async for event in stream:
            delta = event.choices[0].delta if event.choices else None
            if delta and delta.tool_calls:
                names.append(delta.tool_calls[0].function.name)
                model.gate.set()  # the stream finishes only once the call reached the client
            if delta and delta.content:
                text.append(delta.content)
        await client.close()
    assert names == ["refund"] and "".join(text) == "Let me refund that."


async def test_non_streamed_reply_is_refined_with_a_header():
    model = PacedModel(["Your order A1234 was delivered on March 15."])
    app = create_app(Settings(policy="default"), Engine(model, "default"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as c:
        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": WITH_TOOLS})
    assert r.status_code == 200 and r.headers["x-rein-refined"] == "factuality"
    assert r.json()["choices"][0]["message"]["content"] == "Your order A1234 was shipped on March 14."


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_clean_draft_passes_unchanged(policy):
    from policies.loader import shipped
    if policy not in shipped():
        pytest.skip(f"policy {policy} not shipped yet")
    model = PacedModel(["Your order A1234 has shipped ", "and arrives on March 14."])
    app = create_app(Settings(policy=policy), Engine(model, policy))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as c:
        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": WITH_TOOLS})
    assert r.headers["x-rein-refined"] == "none"
    assert r.json()["choices"][0]["message"]["content"] == "Your order A1234 has shipped and arrives on March 14."


async def test_flag_mode_reports_in_a_header_and_returns_the_agents_reply(tmp_path):
    pack = tmp_path / "flagging.yaml"
    pack.write_text("name: flagging\nextends: structural\nrefiners: {factuality_mode: flag}\n")
    draft = "Your order A1234 was delivered on March 15."
    model = PacedModel([draft])
    app = create_app(Settings(policy=str(pack)), Engine(model, str(pack)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as c:
        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": WITH_TOOLS})
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == draft
    assert r.headers["x-rein-refined"] == "none" and r.headers["x-rein-flagged"] == "factuality"
