"""The official ``anthropic`` client's Messages API against rein, every policy, plain and streamed."""
from __future__ import annotations

import anthropic
import pytest
from fake_upstream import FakeUpstream
from protocol_doubles import WEATHER_ANTHROPIC, anthropic_client, app_for, asgi_client, sse

from middleware.models import OpenAICompatModel, ScriptedModel, tool_call

POLICIES = ["passthrough", "structural", "default"]
HI = [{"role": "user", "content": "hello there"}]
QUESTION = "Which one: W1001 (desk lamp) or W1002 (office chair)?"
CANCEL = {"name": "cancel_order", "description": "Cancel an order.", "input_schema": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}


@pytest.fixture
async def upstream():
    async with FakeUpstream() as up:
        yield up


@pytest.fixture
async def rein(upstream, request):
    agent = OpenAICompatModel(upstream.base_url)
    yield app_for(agent, getattr(request, "param", "passthrough"))
    await agent.pool.close()


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_create_maps_system_fields_usage_and_key(rein, upstream):
    async with anthropic_client(rein, api_key="sk-ant-caller") as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-test", max_tokens=64, system=[{"type": "text", "text": "Be brief."}], messages=HI,
            stop_sequences=["END"], metadata={"user_id": "u-1"}, extra_body={"top_k": 5, "temperature": 0.5})
        msg = await raw.parse()
    assert msg.id.startswith("msg_") and msg.type == "message" and msg.role == "assistant"
    assert [(b.type, b.text) for b in msg.content] == [("text", "Echo: hello there")]
    assert msg.stop_reason == "end_turn" and msg.usage.input_tokens == 4 and msg.usage.output_tokens == 3
    assert raw.headers["x-rein-policy"] in POLICIES
    sent = upstream.requests[-1]
    assert sent.body["messages"] == [{"role": "system", "content": "Be brief."},
                                     {"role": "user", "content": "hello there"}]
    assert sent.body["max_tokens"] == 64 and sent.body["stop"] == ["END"] and sent.body["user"] == "u-1"
    assert sent.body["temperature"] == 0.5 and sent.body["top_k"] == 5
    assert sent.headers["authorization"] == "Bearer sk-ant-caller"  # x-api-key, onward as the caller's key


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_messages_stream_gives_text_events_and_final_message(rein):
    async with anthropic_client(rein) as client:
        async with client.messages.stream(model="claude-test", max_tokens=64, messages=[
                {"role": "user", "content": "one two three"}]) as stream:
            pieces = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
    assert "".join(pieces) == "Echo: one two three" and len(pieces) > 1
    assert final.content[0].text == "Echo: one two three" and final.stop_reason == "end_turn"
    assert final.usage.input_tokens == 3 and final.usage.output_tokens == 4


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_tool_use_then_tool_result_round_trip(rein, upstream, stream):
    tool = {**WEATHER_ANTHROPIC, "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "weather in Oslo"}]}]
    async with anthropic_client(rein) as client:
        if stream:
            async with client.messages.stream(model="m", max_tokens=64, messages=messages, tools=[tool],
                                              tool_choice={"type": "auto"}) as s:
                first = await s.get_final_message()
        else:
            first = await client.messages.create(model="m", max_tokens=64, messages=messages, tools=[tool])
        use = first.content[-1]
        assert first.stop_reason == "tool_use" and use.type == "tool_use" and use.name == "get_weather"
        assert use.input == {"query": "weather in Oslo"}
        messages += [{"role": "assistant", "content": [b.model_dump() for b in first.content]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                   "content": [{"type": "text", "text": "12C and rain"}]}]}]
        second = await client.messages.create(model="m", max_tokens=64, messages=messages, tools=[tool])
    assert second.content[0].text == "The tool said: 12C and rain"
    sent = upstream.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                               "parameters": tool["input_schema"]}}]
    assert sent["messages"][-2]["tool_calls"][0]["id"] == use.id
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": use.id, "content": "12C and rain"}


async def test_an_is_error_tool_result_is_a_tool_failure_for_the_detectors():
    agent = ScriptedModel(["Sorry, the lookup failed; retrying later."])
    messages = [{"role": "user", "content": "weather in Oslo"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                                   "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                              "content": "weather service unavailable"}]}]
    async with anthropic_client(app_for(agent, "structural")) as client:
        raw = await client.messages.with_raw_response.create(model="m", max_tokens=64, messages=messages,
                                                             tools=[WEATHER_ANTHROPIC])
    assert raw.headers["x-rein-diagnosis"].startswith("tool_failure"), raw.headers["x-rein-diagnosis"]
    tool_message = next(m for m in agent.requests[0].messages if m.role == "tool")
    assert tool_message.content == "[error] weather service unavailable"
    # The same result without is_error reads as data, not as a failed call.
    messages[2]["content"][0]["is_error"] = False
    messages[2]["content"][0]["content"] = "sunny, 20C"
    agent.replies.append("It is sunny.")
    async with anthropic_client(app_for(agent, "structural")) as client:
        raw = await client.messages.with_raw_response.create(model="m", max_tokens=64, messages=messages,
                                                             tools=[WEATHER_ANTHROPIC])
    assert raw.headers["x-rein-diagnosis"] == "none"


@pytest.mark.parametrize("stream", [False, True])
async def test_recovery_and_think_tools_never_reach_the_client(stream):
    agent = ScriptedModel([tool_call("think", {"thought": "two orders; ask"}),
                           tool_call("ask_clarification", {"question": QUESTION})])
    vague = [{"role": "user", "content": "what are my orders?"},
             {"role": "assistant", "content": "You have W1001 (desk lamp) and W1002 (office chair)."},
             {"role": "user", "content": "cancel it"}]
    async with asgi_client(app_for(agent, "structural")) as http:
        r = await http.post("/v1/messages", json={"model": "m", "max_tokens": 64, "messages": vague, "tools": [CANCEL],
                                                  "stream": stream})
    assert r.status_code == 200 and r.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"
    assert "tool_use" not in r.text and "think" not in r.text and "ask_clarification" not in r.text
    if stream:
        events = sse(r.text)
        text = "".join(d["delta"]["text"] for k, d in events if k == "content_block_delta")
        assert text == QUESTION and events[-1][0] == "message_stop"
        assert [d["delta"]["stop_reason"] for k, d in events if k == "message_delta"] == ["end_turn"]
    else:
        assert r.json()["content"] == [{"type": "text", "text": QUESTION}] and r.json()["stop_reason"] == "end_turn"


@pytest.mark.parametrize("body, where", [
    ({"model": "m", "messages": [{"role": "user", "content": "hi"}]}, "max_tokens"),
    ({"model": "m", "max_tokens": 5}, "messages"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "hi"}]}, "messages.0.role"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document"}]}]},
     "messages.0.content.0.type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]},
     "tool_use_id"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
    ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}], "tool_choice": {"type": "x"}},
     "tool_choice"),
])
async def test_bad_input_gets_anthropic_error_shape_and_never_reaches_the_model(body, where):
    agent = ScriptedModel(["unused"])
    async with asgi_client(app_for(agent, "default")) as http:
        r = await http.post("/v1/messages", json=body)
        garbage = await http.post("/v1/messages", content=b"[1, 2")
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "error" and r.json()["error"]["type"] == "invalid_request_error"
    assert where in r.json()["error"]["message"]
    assert garbage.status_code == 400 and garbage.json()["error"]["type"] == "invalid_request_error"
    assert agent.requests == []
    async with anthropic_client(app_for(agent, "default")) as client:
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.create(model="m", max_tokens=5, messages=[{"role": "bot", "content": "x"}])


async def test_count_tokens_answers_501_and_upstream_failures_keep_the_shape():
    agent = ScriptedModel([])  # no reply left: the upstream fails
    async with asgi_client(app_for(agent, "passthrough")) as http:
        counted = await http.post("/v1/messages/count_tokens", json={"model": "m", "messages": HI})
        failed = await http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HI})
        streamed = await http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HI, "stream": True})
    assert counted.status_code == 501 and counted.json()["error"]["type"] == "not_supported_error"
    assert failed.status_code == 502 and failed.json() == {"type": "error", "error": {
        "type": "api_error", "message": "scripted model has no reply left"}}
    assert streamed.status_code == 502 and streamed.json()["type"] == "error"
