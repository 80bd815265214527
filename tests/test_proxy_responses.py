"""The official ``openai`` client's Responses API against rein, every policy, plain and streamed."""
from __future__ import annotations

import json

import openai
import pytest
from fake_upstream import FakeUpstream, openai_client
from protocol_doubles import WEATHER_FN, app_for, asgi_client

from middleware.models import OpenAICompatModel, ScriptedModel, tool_call

POLICIES = ["passthrough", "structural", "default"]
VAGUE = [{"role": "user", "content": "what are my orders?"},
         {"role": "assistant", "content": "You have W1001 (desk lamp) and W1002 (office chair)."},
         {"role": "user", "content": "cancel it"}]
CANCEL = {"type": "function", "name": "cancel_order", "description": "Cancel an order.", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}
QUESTION = "Which one: W1001 (desk lamp) or W1002 (office chair)?"


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
async def test_plain_answer_usage_and_fields_both_ways(rein, upstream):
    async with openai_client(rein) as client:
        raw = await client.responses.with_raw_response.create(
            model="gpt-test", instructions="Be brief.", input="hello there", temperature=0.25,
            max_output_tokens=50, metadata={"team": "a"}, extra_body={"vendor_options": {"cache": "on"}})
        resp = raw.parse()
    assert resp.id.startswith("resp_") and resp.status == "completed" and resp.object == "response"
    assert resp.output_text == "Echo: hello there"
    assert resp.output[0].type == "message" and resp.output[0].content[0].type == "output_text"
    assert resp.usage.input_tokens == 4 and resp.usage.output_tokens == 3 and resp.usage.total_tokens == 7
    assert resp.instructions == "Be brief." and resp.metadata == {"team": "a"} and resp.temperature == 0.25
    assert resp.model_extra.get("system_fingerprint") == "fp_fake"  # an upstream field rein does not model
    assert raw.headers["x-rein-policy"] in POLICIES and float(raw.headers["x-rein-overhead-ms"]) >= 0
    sent = upstream.requests[-1].body
    assert sent["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello there"}]
    assert sent["temperature"] == 0.25 and sent["max_tokens"] == 50 and sent["metadata"] == {"team": "a"}
    assert sent["vendor_options"] == {"cache": "on"}


@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_stream_events_in_order_with_sequence_numbers(rein):
    async with openai_client(rein) as client:
        stream = await client.responses.create(model="gpt-test", input="one two three", stream=True)
        events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    for kind in ("response.output_item.added", "response.content_part.added", "response.output_text.done",
                 "response.content_part.done", "response.output_item.done"):
        assert kinds.count(kind) == 1, kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Echo: one two three"
    done = events[-1].response
    assert done.output_text == text and done.usage.input_tokens == 3 and done.status == "completed"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("rein", POLICIES, indirect=True)
async def test_function_tool_round_trip_with_function_call_output(rein, upstream, stream):
    tool = {**WEATHER_FN, "parameters": {"type": "object", "properties": {"query": {"type": "string"}}}}
    items = [{"role": "user", "content": [{"type": "input_text", "text": "weather in Oslo"}]}]
    async with openai_client(rein) as client:
        if stream:
            events = [e async for e in await client.responses.create(model="m", input=items, tools=[tool],
                                                                      stream=True)]
            kinds = [e.type for e in events]
            assert "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
            call = events[-1].response.output[0]
        else:
            call = (await client.responses.create(model="m", input=items, tools=[tool], tool_choice="auto")).output[0]
        assert call.type == "function_call" and call.name == "get_weather"
        assert json.loads(call.arguments) == {"query": "weather in Oslo"}
        items += [call.model_dump(exclude_none=True),
                  {"type": "function_call_output", "call_id": call.call_id, "output": "12C and rain"}]
        second = await client.responses.create(model="m", input=items, tools=[tool])
    assert second.output_text == "The tool said: 12C and rain"
    sent = upstream.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}]
    assert sent["messages"][-2]["tool_calls"][0] == {"id": call.call_id, "type": "function", "function": {
        "name": "get_weather", "arguments": call.arguments}}
    assert sent["messages"][-1] == {"role": "tool", "tool_call_id": call.call_id, "content": "12C and rain"}


async def test_previous_response_id_without_a_store_is_a_clear_400(rein):
    async with openai_client(rein) as client:
        with pytest.raises(openai.BadRequestError) as e:
            await client.responses.create(model="m", input="again", previous_response_id="resp_123")
    assert e.value.status_code == 400 and e.value.code == "previous_response_not_supported"
    assert "response store" in e.value.message


async def test_with_a_store_responses_continue_and_can_be_read_and_deleted(tmp_path):
    agent = ScriptedModel(["Noted: you are Dana.", "You are Dana.", "Hello."])
    app = app_for(agent, "structural", response_db=str(tmp_path / "responses.db"), api_keys=["sk-a", "sk-b"])
    async with openai_client(app, api_key="sk-a") as client, openai_client(app, api_key="sk-b") as other:
        first = await client.responses.create(model="m", instructions="Be kind.", input="I am Dana.")
        second = await client.responses.create(model="m", input="Who am I?", previous_response_id=first.id)
        assert second.output_text == "You are Dana." and second.previous_response_id == first.id
        seen = [(type(m).__name__, m.content) for m in agent.requests[1].messages]
        # The earlier input and output come back; the earlier instructions do not (as on OpenAI).
        assert seen == [("UserMessage", "I am Dana."), ("AssistantMessage", "Noted: you are Dana."),
                        ("UserMessage", "Who am I?")]
        assert (await client.responses.retrieve(first.id)).output_text == "Noted: you are Dana."
        with pytest.raises(openai.NotFoundError):  # another tenant neither reads nor continues it
            await other.responses.retrieve(first.id)
        with pytest.raises(openai.NotFoundError):
            await other.responses.create(model="m", input="x", previous_response_id=first.id)
        await client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)
        streamed = await client.responses.create(model="m", input="hi", stream=True, extra_body={})
        done = [e async for e in streamed][-1].response
    assert done.status == "completed"
    async with asgi_client(app, headers={"authorization": "Bearer sk-a"}) as http:
        assert (await http.get(f"/v1/responses/{done.id}")).json()["output"] == [o.model_dump(exclude_none=True) for o in done.output]


@pytest.mark.parametrize("stream", [False, True])
async def test_recovery_and_think_tools_never_reach_the_client(stream):
    agent = ScriptedModel([tool_call("think", {"thought": "two orders; ask"}),
                           tool_call("ask_clarification", {"question": QUESTION})])
    app = app_for(agent, "structural")
    async with openai_client(app) as client:
        raw = await client.responses.with_raw_response.create(model="m", input=VAGUE, tools=[CANCEL], stream=stream)
        if stream:
            events = [e async for e in raw.parse()]
            assert not any("function_call" in e.type for e in events)
            resp = events[-1].response
        else:
            resp = raw.parse()
    assert raw.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"
    assert [o.type for o in resp.output] == ["message"] and resp.output_text == QUESTION
    assert "think" in [t["function"]["name"] for t in agent.requests[0].tools]  # rein gave the agent its tools
    assert [t.name for t in resp.tools] == ["cancel_order"]


@pytest.mark.parametrize("body, param", [
    ({"model": "m"}, "input"),
    ({"model": "m", "input": 7}, "input"),
    ({"model": "m", "input": "hi", "tools": [{"type": "web_search"}]}, "tools.0.type"),
    ({"model": "m", "input": "hi", "tools": [{"type": "function"}]}, "tools.0.name"),
    ({"model": "m", "input": [{"type": "reasoning", "summary": []}]}, "input.0.type"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "c9", "output": "x"}]}, "input.0.call_id"),
    ({"model": "m", "input": [{"type": "function_call", "call_id": "c1"}]}, "input.0.name"),
    ({"model": "m", "input": [{"role": "robot", "content": "hi"}]}, "input.0.role"),
    ({"model": "m", "input": "hi", "text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
    ({"model": "m", "input": "hi", "conversation": "conv_1"}, "conversation"),
])
async def test_bad_input_gets_openai_error_shape_and_never_reaches_the_model(body, param):
    agent = ScriptedModel(["unused"])
    async with asgi_client(app_for(agent, "default")) as http:
        r = await http.post("/v1/responses", json=body)
        garbage = await http.post("/v1/responses", content=b"{not json")
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"error"} and r.json()["error"]["param"] == param and r.json()["error"]["message"]
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "invalid_json"
    assert agent.requests == []


async def test_json_schema_format_and_tool_choice_reach_the_agent_in_chat_form():
    agent = ScriptedModel(['{"ok": true}'])
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}}
    async with openai_client(app_for(agent, "passthrough")) as client:
        resp = await client.responses.create(
            model="m", input="json please", tools=[CANCEL], parallel_tool_calls=False,
            tool_choice={"type": "function", "name": "cancel_order"},
            text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}})
    seen = agent.requests[0]
    assert seen.response_format == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema,
                                                                         "strict": True}}
    assert seen.tool_choice == {"type": "function", "function": {"name": "cancel_order"}}
    assert seen.extra["parallel_tool_calls"] is False
    assert resp.text.format.type == "json_schema" and resp.parallel_tool_calls is False
