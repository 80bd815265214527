"""Fail open on every path (issue 20, defect 1): a stage that raises is skipped, the agent's text
reaches the client as written, and the response says which stage was skipped — on chat completions,
Responses and Messages, streamed and not, under ``structural`` and ``default``.

Two causes are exercised: the real one (a tool result with a list or object under an id-like key,
which once raised ``TypeError: unhashable`` inside the sentence check) and any future one (a refiner
forced to raise), so no such cause can ever cost a reply again."""
from __future__ import annotations

import json

import httpx
import openai
import pytest
from protocol_doubles import anthropic_client, app_for

from middleware.models import ScriptedModel
from refiners.factuality import Checker
from refiners.refinery import AdaptiveRefinery

REPLY = "Your order A1 has shipped. It arrives on March 14. Anything else?"


def dialogue(record: dict) -> list[dict]:
    return [
        {"role": "user", "content": "Where is my order A1?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{\"order_id\": \"A1\"}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": json.dumps(record)},
        {"role": "user", "content": "When does it arrive?"},
    ]


ID_SHAPES = [{"order_id": ["A1"], "status": "shipped", "delivery_date": "2025-03-14"},
             {"tracking_id": ["123"], "order_id": "A1", "delivery_date": "2025-03-14"},
             {"flight_number": {"x": 1}, "order_id": "A1", "delivery_date": "2025-03-14"}]


def openai_client(app) -> openai.AsyncOpenAI:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test/v1")
    return openai.AsyncOpenAI(base_url="http://rein.test/v1", api_key="k", max_retries=0, http_client=http)


@pytest.fixture
def broken_checks(monkeypatch):
    """Every factuality claim check and the refinery's stream decision raise, as a bug would."""
    def boom(*args, **kwargs):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(Checker, "_check", boom)
    return boom


async def _chat_stream(app, messages) -> str:
    """The streamed text, as the official client reads it."""
    async with openai_client(app) as client:
        text = ""
        async for chunk in await client.chat.completions.create(model="m", messages=messages, stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
    return text


@pytest.mark.parametrize("record", ID_SHAPES)
@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_list_or_object_under_an_id_key_streams_the_whole_reply(record, policy):
    app = app_for(ScriptedModel([REPLY], cycle=True), policy)
    text = await _chat_stream(app, dialogue(record))
    assert text == REPLY


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_a_raising_sentence_check_costs_no_text_and_says_so(broken_checks, policy):
    app = app_for(ScriptedModel([REPLY], cycle=True), policy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": dialogue(ID_SHAPES[0]),
                                                          "stream": True})
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text = "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e.get("choices"))
    assert text == REPLY
    assert not [e for e in events if "error" in e]
    trailer = json.loads(next(line[len(": rein "):] for line in r.text.splitlines() if line.startswith(": rein {")))
    # structural checks sentence by sentence (factuality is skipped); default with a model of its own
    # holds the reply whole and the planner's stage is skipped: either way the stage is named.
    skipped = trailer["x-rein-fail-open"]
    assert ("factuality" if policy == "structural" else "plan_refine") in skipped
    assert "TypeError" not in skipped and "unhashable" not in skipped


async def test_a_raising_stream_decision_streams_unchecked(monkeypatch):
    def boom(self, ctx):
        raise TypeError("unhashable type: 'list'")

    monkeypatch.setattr(AdaptiveRefinery, "may_refine", boom)
    app = app_for(ScriptedModel([REPLY], cycle=True), "structural")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": dialogue(ID_SHAPES[0]),
                                                          "stream": True})
    assert r.status_code == 200
    assert r.headers["x-rein-held"] == "none"
    assert "stream_check" in r.headers["x-rein-fail-open"]
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    assert "".join((e["choices"][0]["delta"].get("content") or "") for e in events if e.get("choices")) == REPLY


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_non_streamed_reply_survives_a_raising_refiner(broken_checks, policy):
    app = app_for(ScriptedModel([REPLY], cycle=True), policy)
    async with openai_client(app) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=dialogue(ID_SHAPES[0]))
    assert raw.parse().choices[0].message.content == REPLY
    assert raw.headers.get("x-rein-fail-open")


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_responses_stream_survives_a_raising_refiner(broken_checks, policy):
    app = app_for(ScriptedModel([REPLY], cycle=True), policy)
    items = [{"role": "user", "content": "Where is my order A1?"},
             {"type": "function_call", "call_id": "c1", "name": "get_order", "arguments": "{\"order_id\": \"A1\"}"},
             {"type": "function_call_output", "call_id": "c1", "output": json.dumps(ID_SHAPES[0])},
             {"role": "user", "content": "When does it arrive?"}]
    async with openai_client(app) as client:
        stream = await client.responses.create(model="m", input=items, stream=True)
        text, kinds = "", []
        async for event in stream:
            kinds.append(event.type)
            if event.type == "response.output_text.delta":
                text += event.delta
    assert text == REPLY
    assert "error" not in kinds and kinds[-1] == "response.completed"


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_messages_stream_survives_a_raising_refiner(broken_checks, policy):
    app = app_for(ScriptedModel([REPLY], cycle=True), policy)
    messages = [{"role": "user", "content": "Where is my order A1?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "get_order",
                                                   "input": {"order_id": "A1"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1",
                                              "content": json.dumps(ID_SHAPES[0])},
                                             {"type": "text", "text": "When does it arrive?"}]}]
    async with anthropic_client(app) as client:
        async with client.messages.stream(model="m", max_tokens=100, messages=messages) as stream:
            text = "".join([t async for t in stream.text_stream])
    assert text == REPLY
