"""The translations on their own: Responses items map onto rein's typed messages, unknown
fields survive, and under passthrough an upstream that speaks the client's protocol gets its bytes."""
from __future__ import annotations

import pytest
from protocol_doubles import ProtocolUpstream, anthropic_client, app_for, asgi_client, sse

from inception.structural import failure_in
from middleware.models import OpenAICompatModel
import middleware.proxy.routes.messages_map as amap
import middleware.proxy.routes.responses_map as rmap
from policies.messages import dump_messages, text_of

ITEMS = [
    {"type": "message", "role": "developer", "content": "Use metric units."},
    {"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "What is on this?"},
        {"type": "input_image", "image_url": "https://example.test/a.png", "detail": "low"},
        {"type": "input_file", "file_id": "file_1"}], "vendor": {"tag": 1}},
    {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me look."}]},
    {"type": "function_call", "call_id": "c1", "name": "look", "arguments": "{\"q\": 1}"},
    {"type": "function_call", "call_id": "c2", "name": "look", "arguments": "{}"},
    {"type": "function_call_output", "call_id": "c1", "output": "a cat"},
    {"type": "function_call_output", "call_id": "c2", "output": [{"type": "input_text", "text": "a hat"},
                                                                 {"type": "input_text", "text": "!"}]},
]


def test_responses_items_map_onto_typed_messages_with_nothing_lost():
    messages = rmap.messages_of(ITEMS)
    chat = dump_messages(messages)
    assert [m["role"] for m in chat] == ["developer", "user", "assistant", "tool", "tool"]
    assert chat[1]["vendor"] == {"tag": 1}  # a field rein does not know stays on the message
    assert chat[1]["content"][1] == {"type": "image_url", "image_url": {"url": "https://example.test/a.png",
                                                                         "detail": "low"}}
    assert [c["id"] for c in chat[2]["tool_calls"]] == ["c1", "c2"]  # parallel calls join the text turn
    # Everything each item said, in chat form (rein never maps messages back to items: the inverse
    # that was held to this round trip served no route and is gone, issue 21).
    assert chat == [
        {"role": "developer", "content": "Use metric units."},
        {"role": "user", "content": [{"type": "text", "text": "What is on this?"},
                                     {"type": "image_url", "image_url": {"url": "https://example.test/a.png",
                                                                         "detail": "low"}},
                                     {"type": "file", "file": {"file_id": "file_1"}}], "vendor": {"tag": 1}},
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{\"q\": 1}"}},
            {"id": "c2", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "a hat"}, {"type": "text", "text": "!"}]},
    ]


def test_an_anthropic_error_result_reads_as_a_failure_and_a_good_one_does_not():
    turn = amap.to_request({"max_tokens": 9, "messages": [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                                          {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "is_error": True, "content": '{"temp": 12}'},
            {"type": "tool_result", "tool_use_id": "t2", "content": [{"type": "text", "text": "fine",
                                                                      "cache_control": {"type": "ephemeral"}}]},
            {"type": "text", "text": "and now?"}]}]}, {})
    roles = [m.role for m in turn.messages]
    assert roles == ["assistant", "tool", "tool", "user"]
    assert turn.messages[0].tool_calls[0].function.arguments == '{"a":1}'
    assert failure_in(text_of(turn.messages[1])) and not failure_in(text_of(turn.messages[2]))
    assert turn.messages[2].content[0]["cache_control"] == {"type": "ephemeral"}  # kept for the upstream
    assert turn.messages[3].content == "and now?"


@pytest.fixture
async def relay():
    async with ProtocolUpstream() as up:
        agents = []

        def app(protocol: str, **settings):
            agent = OpenAICompatModel(up.base_url, **settings)
            agents.append(agent)
            return app_for(agent, "passthrough", upstream_protocol=protocol)

        yield up, app
        for agent in agents:
            await agent.pool.close()


async def test_passthrough_relays_responses_bytes_to_a_responses_upstream(relay):
    up, app = relay
    body = {"model": "m", "input": "hi", "reasoning": {"summary": "auto"}, "unknown_knob": [1]}
    async with asgi_client(app("responses"), headers={"authorization": "Bearer sk-c"}) as http:
        plain = await http.post("/v1/responses", json=body)
        streamed = await http.post("/v1/responses", json={**body, "stream": True})
        failed = await http.post("/v1/responses", json={"model": "fake-400", "input": "x"})
    assert plain.json() == ProtocolUpstream.RESPONSE  # the upstream's own object, fields rein does not know kept
    assert up.requests[0].body == body and up.requests[0].headers["authorization"] == "Bearer sk-c"
    assert [k for k, _ in sse(streamed.text)] == ["response.completed"]
    assert failed.status_code == 400 and failed.json()["error"]["message"] == "no"


async def test_passthrough_relays_messages_bytes_to_an_anthropic_upstream(relay):
    up, app = relay
    async with anthropic_client(app("messages"), api_key="sk-ant-c") as client:
        msg = await client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}],
                                           extra_headers={"anthropic-beta": "b1"})
        async with client.messages.stream(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as s:
            final = await s.get_final_message()
    assert msg.model_extra["vendor"] == "kept" and msg.content[0].text == "from upstream" and final.id == "msg_upstream"
    seen = up.requests[0].headers
    assert seen["authorization"] == "Bearer sk-ant-c" and seen["anthropic-version"] and seen["anthropic-beta"] == "b1"
    async with asgi_client(app("messages")) as http:
        await http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": []},
                        headers={"x-api-key": "sk-ant-raw", "anthropic-version": "2023-06-01"})
    assert up.requests[-1].headers["x-api-key"] == "sk-ant-raw"
    assert up.requests[-1].headers["anthropic-version"] == "2023-06-01"


async def test_a_chat_upstream_still_gets_chat_completions_under_passthrough(relay):
    up, app = relay
    async with asgi_client(app("chat")) as http:
        r = await http.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": [
            {"role": "user", "content": "hi"}]})
    assert r.json()["content"] == [{"type": "text", "text": "Echo: hi"}]
    assert "messages" in up.requests[0].body and up.requests[0].body["max_tokens"] == 5
