"""Streams stay streams (issue 10), read as SSE by the official openai client over loopback: with only
rules to run, each sentence leaves rein once checked — never before — a contradicted value never
reaches the client, and every chunk keeps the upstream's id, created, fingerprint and fields. With a
model refiner possible the reply is held whole, the client told ``: rein refining`` at once."""
from __future__ import annotations

import asyncio

import httpx
import openai
from test_refine_stream import WITH_TOOLS, LiveServer

from middleware.agent_stream import SENTENCES
from middleware.config import Settings
from middleware.engine import Engine
from middleware.models.chunks import piece_of, reshape
from middleware.models.testing import as_response
from middleware.proxy import create_app
from middleware.sentence_release import SentenceRelease
from refiners.stream_check import SentenceCheck

UPSTREAM = {"id": "chatcmpl-UPSTREAM42", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "up-model", "system_fingerprint": "fp_up", "service_tier": "default", "x_vendor": {"k": 1}}
PIECES = ["Your order A1234 ", "was delivered ", "on March", " 15. It ", "ships with ", "DHL.", " Anything else?"]


def shaped(delta: dict, finish: str | None = None) -> dict:
    return {**UPSTREAM, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class ShapedModel:
    """Streams ``pieces`` in the upstream's shape; it waits for ``gate`` before its last piece."""

    name = "shaped"

    def __init__(self, pieces: list[str], tool_call: dict | None = None):
        self.pieces = pieces
        self.tool_call = tool_call
        self.gate = asyncio.Event()
        self.sent = 0  # characters of text sent so far

    async def complete(self, request):
        return as_response("".join(self.pieces), self.name)

    async def stream(self, request):
        yield shaped({"role": "assistant", "content": ""})
        for i, piece in enumerate(self.pieces):
            if i == len(self.pieces) - 1:
                await asyncio.wait_for(self.gate.wait(), 5)  # times out if rein held the earlier sentences
            self.sent += len(piece)
            yield shaped({"content": piece})
            await asyncio.sleep(0.005)
        if self.tool_call:
            yield shaped({"tool_calls": [{"index": 0, **self.tool_call}]})
        yield shaped({}, "tool_calls" if self.tool_call else "stop")


class CheckSpy:
    """Wraps SentenceCheck.sentence: the checked text so far, as rein's checks returned it."""

    def __init__(self, monkeypatch):
        self.checked = ""
        real = SentenceCheck.sentence

        async def sentence(check, start, end):
            out = await real(check, start, end)
            self.checked += out
            return out

        monkeypatch.setattr(SentenceCheck, "sentence", sentence)


def serve(model, policy, rein_model=None):
    return LiveServer(create_app(Settings(policy=policy), Engine(model, policy, rein_model=rein_model)))


async def test_each_sentence_leaves_rein_checked_and_fixed_with_the_upstreams_ids(monkeypatch):
    spy = CheckSpy(monkeypatch)
    model = ShapedModel(PIECES)
    async with serve(model, "structural") as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="m", messages=WITH_TOOLS, stream=True)
        got, events = "", []
        async for event in stream:
            events.append(event)
            delta = event.choices[0].delta.content if event.choices else None
            if delta:
                got += delta
                # Every character the client has was returned by rein's check before it left rein.
                assert spy.checked.startswith(got), (got, spy.checked)
                if "14." in got:
                    model.gate.set()  # the last piece comes only once the first sentence arrived
        await client.close()
    assert got == "Your order A1234 was shipped on March 14. It ships with DHL. Anything else?"
    assert "delivered" not in got and "15" not in got  # the contradicted values never reached the client
    assert {e.id for e in events} == {"chatcmpl-UPSTREAM42"}
    assert {e.created for e in events} == {1700000000} and {e.model for e in events} == {"up-model"}
    assert {e.system_fingerprint for e in events} == {"fp_up"} and {e.service_tier for e in events} == {"default"}
    assert all(e.model_extra.get("x_vendor") == {"k": 1} for e in events)  # a field rein does not know
    # The upstream's chunking: a changed value goes out in the chunk it came in.
    texts = [e.choices[0].delta.content for e in events if e.choices and e.choices[0].delta.content]
    assert texts[:4] == ["Your order A1234 ", "was shipped ", "on March", " 14."]


async def test_the_trailer_and_headers_say_what_was_held_and_changed():
    model = ShapedModel(PIECES)
    model.gate.set()
    async with serve(model, "structural") as url:
        async with httpx.AsyncClient(base_url=url) as c:
            async with c.stream("POST", "/v1/chat/completions",
                                json={"model": "m", "messages": WITH_TOOLS, "stream": True}) as r:
                body = (await r.aread()).decode()
    assert r.headers["x-rein-held"] == "sentences"
    trailer = next(line for line in body.splitlines() if line.startswith(": rein {"))
    assert '"x-rein-refined":"factuality"' in trailer and '"x-rein-held":"sentences"' in trailer
    assert '"x-rein-changed-sentences":"1"' in trailer and '"x-rein-sentences":"3"' in trailer
    assert '"x-rein-held-ms":' in trailer


async def test_tool_call_chunks_pass_unheld_while_text_is_checked():
    call = {"id": "call_9", "type": "function", "function": {"name": "refund", "arguments": "{\"order_id\": \"A1234\"}"}}
    model = ShapedModel(["Let me refund that.", " Done"], tool_call=call)
    model.gate.set()
    async with serve(model, "structural") as url:
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.chat.completions.create(model="m", messages=WITH_TOOLS, stream=True)
        names, text = [], ""
        async for event in stream:
            delta = event.choices[0].delta if event.choices else None
            if delta and delta.tool_calls:
                names.append(delta.tool_calls[0].function.name)
                assert text == "Let me refund that. Done"  # the text before it went out first, checked
            if delta and delta.content:
                text += delta.content
        await client.close()
    assert names == ["refund"]


async def test_a_possible_model_refiner_holds_the_whole_reply_and_says_so_at_once():
    model = ShapedModel(PIECES)
    model.gate.set()
    # default with a model for rein (here the agent itself): coherence may ask it, so the reply is held.
    async with serve(model, "default", rein_model=model) as url:
        async with httpx.AsyncClient(base_url=url) as c:
            async with c.stream("POST", "/v1/chat/completions",
                                json={"model": "m", "messages": WITH_TOOLS, "stream": True}) as r:
                lines = [line async for line in r.aiter_lines() if line]
    assert r.headers["x-rein-held"] == "whole"
    assert lines[0] == ": rein refining"  # before any text: proxies and clients do not time out
    data = [line for line in lines if line.startswith("data: {")]
    assert len(data) == len(PIECES) + 2  # the upstream's chunking: role, each piece, finish
    assert all('"id":"chatcmpl-UPSTREAM42"' in d and '"system_fingerprint":"fp_up"' in d for d in data)
    assert "15." not in "".join(data) and '"x-rein-held":"whole"' in lines[-2]


async def test_a_decimal_point_is_not_the_end_of_a_sentence_and_a_split_chunk_keeps_its_shape():
    model = ShapedModel(["It costs $12", ".50 in total. The", " rest is yours."])
    model.gate.set()
    app = create_app(Settings(policy="structural"), Engine(model, "structural"))
    sent: list[dict] = []
    pipeline = app.state.engine.pipeline()
    from policies.messages import parse_messages
    from policies.chat_model import ModelRequest
    state = pipeline.initial(ModelRequest(messages=parse_messages(WITH_TOOLS), model="m"), True)
    from middleware.pipeline import stages
    state.update(await stages.diagnose(pipeline, state))
    assert state["stream_mode"] == SENTENCES
    check = state["sentence_check"]  # the one checker of the turn, kept in state
    release = SentenceRelease(check, sent.append)
    async for c in model.stream(None):
        await release.add(c)
    await release.close()
    texts = [c["choices"][0]["delta"].get("content") for c in sent]
    assert texts == ["", "It costs $12", ".50 in total.", " The", " rest is yours.", None]
    assert all(c["id"] == "chatcmpl-UPSTREAM42" for c in sent) and "role" not in sent[3]["choices"][0]["delta"]
    assert release.report.sentences == 2


def test_reshape_keeps_the_upstreams_chunks_and_puts_a_change_where_it_was():
    chunks = [shaped({"role": "assistant", "content": ""}), shaped({"content": "on March 1"}),
              shaped({"content": "5, at 9"}), shaped({}, "stop")]
    out = reshape(chunks, "on March 14, at 9")
    assert [c["choices"][0]["delta"].get("content") for c in out] == ["", "on March 1", "4, at 9", None]
    assert out[0] is chunks[0] and all(c["id"] == "chatcmpl-UPSTREAM42" for c in out)
    assert reshape(chunks, "on March 15, at 9") == chunks  # unchanged: as the upstream sent it
    assert piece_of("abcdef", 0, 3, [(2, 5, "X")], False) + piece_of("abcdef", 3, 6, [(2, 5, "X")], True) == "abXf"
