"""A tool call an action check holds never reaches the client, in all three wire formats, streamed
and not: the agent is re-asked with the plan, the re-asked answer goes out; past the policy's
rounds the call is dropped and the reply says so. Official openai and anthropic clients."""
from __future__ import annotations

import json

import orjson
import pytest
from action_doubles import REASON, RULE, HoldCalls
from fake_upstream import asgi_client, openai_client
from protocol_doubles import anthropic_client, sse

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, ScriptedModel, tool_call
from middleware.models.chunks import chunk
from middleware.proxy import create_app
from policies.loader import load_policy

CANCEL = {"type": "function", "function": {"name": "cancel_reservation", "description": "Cancel a reservation.",
                                           "parameters": {"type": "object", "properties": {
                                               "reservation_id": {"type": "string"}}, "required": ["reservation_id"]}}}
LOOKUP = {"type": "function", "function": {"name": "get_reservation", "description": "Look a reservation up.",
                                           "parameters": {"type": "object", "properties": {
                                               "reservation_id": {"type": "string"}}, "required": ["reservation_id"]}}}
ASK = [{"role": "user", "content": "Cancel reservation ABC123 please."}]
SORRY = "I'm sorry, ABC123 cannot be cancelled: it was booked more than a day ago."


def planned(request) -> bool:
    """The agent sees the hold's plan (planted as its own reasoning) in the re-ask."""
    return any("Do not call cancel_reservation" in c.function.arguments
               for m in request.messages if m.role == "assistant" for c in m.tool_calls or [])


def agent_that_learns() -> FunctionModel:
    """Cancels first; once re-asked with the plan, answers in words."""
    return FunctionModel(lambda r: SORRY if planned(r) else tool_call("cancel_reservation", {"reservation_id": "ABC123"}))


def agent_that_insists(also_lookup: bool = False) -> FunctionModel:
    def reply(request):
        calls = [tool_call("cancel_reservation", {"reservation_id": "ABC123"}).tool_calls[0]]
        if also_lookup:
            calls.append(tool_call("get_reservation", {"reservation_id": "ABC123"}, id="call_lookup").tool_calls[0])
        return {"content": "Cancelling it now.", "tool_calls": [c.model_dump() for c in calls]}
    return FunctionModel(reply)


def app_with(agent, hold: bool = True, **settings):
    policy = load_policy("structural")
    engine = Engine(agent, policy, rein_model=ScriptedModel([]))
    inception = HoldCalls(policy, hold=hold)
    engine.pipeline().inception = inception
    return create_app(Settings(policy="structural", **settings), engine), inception


def trailer(body: str) -> dict:
    line = next(x for x in body.splitlines() if x.startswith(": rein {"))
    return json.loads(line[len(": rein "):])


# ---- chat completions --------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
async def test_a_held_call_never_reaches_the_client_and_the_reasked_answer_does(stream):
    agent = agent_that_learns()
    app, _ = app_with(agent)
    async with openai_client(app) as client:
        if stream:
            raw = await client.chat.completions.with_raw_response.create(
                model="m", messages=ASK, tools=[CANCEL], stream=True)
            chunks = [c async for c in raw.parse()]
            calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        else:
            raw = await client.chat.completions.with_raw_response.create(model="m", messages=ASK, tools=[CANCEL])
            message = raw.parse().choices[0].message
            calls, text, finish = message.tool_calls or [], message.content, [raw.parse().choices[0].finish_reason]
    assert calls == [] and text == SORRY and finish == ["stop"]
    assert len(agent.requests) == 2 and planned(agent.requests[1]) and not planned(agent.requests[0])
    if not stream:
        assert raw.headers["x-rein-held-calls"] == RULE and "x-rein-dropped-calls" not in raw.headers


async def test_the_stream_trailer_names_the_rule_that_held_the_call():
    app, _ = app_with(agent_that_learns())
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "tools": [CANCEL],
                                                          "stream": True})
    assert "cancel_reservation" not in r.text.split(": rein {")[0]
    assert trailer(r.text)["x-rein-held-calls"] == RULE


@pytest.mark.parametrize("stream", [False, True])
async def test_past_the_rounds_the_call_is_dropped_and_the_reply_says_which_and_why(stream):
    agent = agent_that_insists()
    app, _ = app_with(agent)
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "tools": [CANCEL],
                                                          "stream": stream})
    assert len(agent.requests) == 3  # the draft, then the policy's default of two re-asks
    if stream:
        events = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
        assert not any(c["choices"][0]["delta"].get("tool_calls") for c in events if c["choices"])
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in events if c["choices"])
        finish = [c["choices"][0]["finish_reason"] for c in events if c["choices"] and c["choices"][0]["finish_reason"]]
        headers = trailer(r.text)
    else:
        message = r.json()["choices"][0]["message"]
        assert message.get("tool_calls") is None
        text, finish, headers = message["content"], [r.json()["choices"][0]["finish_reason"]], r.headers
    assert text.endswith(f"I did not carry out cancel_reservation: {REASON}.")
    assert text.count("Cancelling it now.") == (3 if stream else 1)  # a stream's text went out each round
    assert finish == ["stop"]
    assert headers["x-rein-held-calls"] == RULE and headers["x-rein-dropped-calls"] == RULE
    assert "dropped" in headers["x-rein-fail-open"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_nobody_held_goes_out_beside_the_dropped_one(stream):
    app, _ = app_with(agent_that_insists(also_lookup=True))
    async with openai_client(app) as client:
        if stream:
            chunks = [c async for c in await client.chat.completions.create(
                model="m", messages=ASK, tools=[CANCEL, LOOKUP], stream=True)]
            names = [tc.function.name for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []
                     if tc.function and tc.function.name]
            finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        else:
            choice = (await client.chat.completions.create(model="m", messages=ASK, tools=[CANCEL, LOOKUP])).choices[0]
            names, finish = [tc.function.name for tc in choice.message.tool_calls], [choice.finish_reason]
    assert names == ["get_reservation"] and finish == ["tool_calls"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_flagged_call_goes_out_and_is_reported(stream):
    agent = agent_that_learns()
    app, _ = app_with(agent, hold=False)
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "tools": [CANCEL],
                                                          "stream": stream})
    assert len(agent.requests) == 1 and "cancel_reservation" in r.text
    headers = trailer(r.text) if stream else r.headers
    assert headers["x-rein-flagged-calls"] == RULE and "x-rein-held-calls" not in headers


async def test_a_checked_call_that_passes_goes_out_as_the_upstream_sent_it():
    upstream = [chunk("chatcmpl-up", "m", {"role": "assistant", "content": "Checking. "}),
                chunk("chatcmpl-up", "m", {"tool_calls": [{"index": 0, "id": "call_ok", "type": "function",
                                                           "function": {"name": "cancel_reservation", "arguments": ""}}]}),
                chunk("chatcmpl-up", "m", {"tool_calls": [{"index": 0, "function": {
                    "arguments": '{"reservation_id": "ABC123", "allowed": true}'}}]}),
                chunk("chatcmpl-up", "m", {}, "tool_calls")]
    upstream = [{**c, "system_fingerprint": "fp_up"} for c in upstream]
    app, inception = app_with(ScriptedModel([upstream]))
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "tools": [CANCEL],
                                                          "stream": True})
    sent = [json.loads(x[6:]) for x in r.text.splitlines() if x.startswith("data: {")]
    assert sent == json.loads(orjson.dumps(upstream)) and inception.checked == 1


async def test_a_stream_whose_tools_no_check_covers_is_not_held():
    """checks_calls says no: the calls stream as before and check_draft never runs on them."""
    app, inception = app_with(ScriptedModel([tool_call("get_reservation", {"reservation_id": "A"})]))
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": ASK, "tools": [LOOKUP],
                                                          "stream": True})
    assert "get_reservation" in r.text and inception.checked == 0


# ---- /v1/messages and /v1/responses ------------------------------------------------------------
ANTHROPIC_CANCEL = {"name": "cancel_reservation", "description": "Cancel a reservation.",
                    "input_schema": CANCEL["function"]["parameters"]}


@pytest.mark.parametrize("stream", [False, True])
async def test_messages_route_holds_the_call_and_sends_the_reasked_answer(stream):
    agent = agent_that_learns()
    app, _ = app_with(agent)
    async with anthropic_client(app) as client:
        if stream:
            async with client.messages.stream(model="m", max_tokens=64, messages=ASK, tools=[ANTHROPIC_CANCEL]) as s:
                final = await s.get_final_message()
        else:
            raw = await client.messages.with_raw_response.create(model="m", max_tokens=64, messages=ASK,
                                                                 tools=[ANTHROPIC_CANCEL])
            final = await raw.parse()
            assert raw.headers["x-rein-held-calls"] == RULE
    assert [b.type for b in final.content] == ["text"] and final.content[0].text == SORRY
    assert final.stop_reason == "end_turn" and len(agent.requests) == 2


async def test_messages_stream_drops_the_call_past_the_rounds():
    async with asgi_client(app_with(agent_that_insists())[0]) as http:
        r = await http.post("/v1/messages", json={"model": "m", "max_tokens": 64, "messages": ASK,
                                                  "tools": [ANTHROPIC_CANCEL], "stream": True})
    events = sse(r.text)
    assert "tool_use" not in r.text
    text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
    assert text.endswith(f"I did not carry out cancel_reservation: {REASON}.")
    assert [d["delta"]["stop_reason"] for k, d in events if k == "message_delta"] == ["end_turn"]
    assert trailer(r.text)["x-rein-dropped-calls"] == RULE


RESPONSES_CANCEL = {"type": "function", "name": "cancel_reservation", "description": "Cancel a reservation.",
                    "parameters": CANCEL["function"]["parameters"]}


@pytest.mark.parametrize("stream", [False, True])
async def test_responses_route_holds_the_call_and_sends_the_reasked_answer(stream):
    agent = agent_that_learns()
    app, _ = app_with(agent)
    async with openai_client(app) as client:
        raw = await client.responses.with_raw_response.create(model="m", input=ASK[0]["content"],
                                                              tools=[RESPONSES_CANCEL], stream=stream)
        if stream:
            events = [e async for e in raw.parse()]
            assert not any("function_call" in e.type for e in events)
            resp = events[-1].response
        else:
            resp = raw.parse()
            assert raw.headers["x-rein-held-calls"] == RULE
    assert [o.type for o in resp.output] == ["message"] and resp.output_text == SORRY
    assert len(agent.requests) == 2
