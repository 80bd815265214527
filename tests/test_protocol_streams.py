"""Every wire format gets the chat route's stream (issue 21: one route type, one stream loop): on
OpenAI Responses and Anthropic Messages too, ``x-rein-held`` says how the text is released, a reply
held whole for a model refiner is announced with ``: rein refining`` before any text, checked
sentences leave fixed, and the trailer closes the stream; the official clients read those streams
as they read any other. Under passthrough, each protocol's byte relay has the agent's ``chat`` span."""
from __future__ import annotations

import json

import anthropic
import httpx
import openai
import pytest
from opentelemetry.trace import SpanKind
from protocol_doubles import ProtocolUpstream, app_for, asgi_client, sse
from test_refine_stream import ORDER
from test_stream_sentences import PIECES, ShapedModel, serve

from middleware.models import OpenAICompatModel
from tests.spans import recording

FIXED = "Your order A1234 was shipped on March 14. It ships with DHL. Anything else?"
ASK = "Where is my order A1234?"
RESPONSES = {"model": "m", "stream": True, "input": [
    {"role": "user", "content": ASK},
    {"type": "function_call", "call_id": "c1", "name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"},
    {"type": "function_call_output", "call_id": "c1", "output": json.dumps(ORDER)}]}
MESSAGES = {"model": "m", "max_tokens": 200, "stream": True, "messages": [
    {"role": "user", "content": ASK},
    {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "get_order",
                                       "input": {"order_id": "A1234"}}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": json.dumps(ORDER)}]}]}
ROUTES = {"responses": ("/v1/responses", RESPONSES), "messages": ("/v1/messages", MESSAGES)}
_exporter = recording()


async def raw_stream(url: str, protocol: str) -> tuple[httpx.Headers, list[str]]:
    path, body = ROUTES[protocol]
    async with httpx.AsyncClient(base_url=url) as c:
        async with c.stream("POST", path, json=body) as r:
            lines = [line async for line in r.aiter_lines() if line]
    assert r.status_code == 200, lines
    return r.headers, lines


async def client_text(url: str, protocol: str) -> str:
    """The reply's text as the official client assembles it from the stream."""
    if protocol == "responses":
        client = openai.AsyncOpenAI(base_url=url + "/v1", api_key="sk-test", max_retries=0)
        stream = await client.responses.create(**{k: v for k, v in RESPONSES.items() if k != "stream"}, stream=True)
        events = [event async for event in stream]
        await client.close()
        assert events[-1].type == "response.completed"
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert events[-1].response.output_text == text
        return text
    client = anthropic.AsyncAnthropic(base_url=url, api_key="sk-test", max_retries=0)
    async with client.messages.stream(**{k: v for k, v in MESSAGES.items() if k != "stream"}) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    await client.close()
    assert final.stop_reason == "end_turn" and final.content[0].text == text
    return text


@pytest.mark.parametrize("protocol", list(ROUTES))
async def test_checked_sentences_leave_fixed_and_the_stream_says_so(protocol):
    model = ShapedModel(PIECES)
    model.gate.set()
    async with serve(model, "structural") as url:
        headers, lines = await raw_stream(url, protocol)
        text = await client_text(url, protocol)
    assert headers["x-rein-held"] == "sentences"
    trailer = next(line for line in lines if line.startswith(": rein {"))
    assert '"x-rein-held":"sentences"' in trailer and '"x-rein-refined":"factuality"' in trailer
    assert text == FIXED  # the contradicted date never reached the client, in either protocol's events


@pytest.mark.parametrize("protocol", list(ROUTES))
async def test_a_reply_held_whole_is_announced_before_any_text(protocol):
    model = ShapedModel(PIECES)
    model.gate.set()
    # default with a model for rein (here the agent itself): coherence may ask it, so the reply is held.
    async with serve(model, "default", rein_model=model) as url:
        headers, lines = await raw_stream(url, protocol)
        text = await client_text(url, protocol)  # the notice is a comment: the client skips it
    assert headers["x-rein-held"] == "whole"
    assert lines[0] == ": rein refining"  # before any event: proxies and clients do not time out
    assert any(line.startswith(": rein {") and '"x-rein-held":"whole"' in line for line in lines)
    assert "15." not in "".join(lines) and "15." not in text and "March 14." in text


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", list(ROUTES))
async def test_the_passthrough_relay_of_each_protocol_has_a_chat_span(protocol, stream):
    path, body = ROUTES[protocol]
    body = {**body, "stream": stream}
    async with ProtocolUpstream() as up:
        agent = OpenAICompatModel(up.base_url)
        async with asgi_client(app_for(agent, "passthrough", upstream_protocol=protocol)) as http:
            _exporter.clear()
            r = await http.post(path, json=body)
        await agent.pool.close()
    assert r.status_code == 200 and (sse(r.text) if stream else r.json())  # the upstream's own answer
    spans = _exporter.get_finished_spans()
    chat = [s for s in spans if s.name.startswith("chat ")]
    request = [s for s in spans if s.name == "rein.request"]
    assert len(chat) == 1 and len(request) == 1, [s.name for s in spans]
    assert chat[0].name == "chat m" and chat[0].kind == SpanKind.CLIENT
    assert chat[0].parent.span_id == request[0].context.span_id
    assert request[0].attributes["rein.protocol"] == protocol
    assert chat[0].attributes["gen_ai.request.model"] == "m"
    if not stream:  # the answer's own usage (both protocols count input_tokens and output_tokens)
        assert chat[0].attributes["gen_ai.usage.input_tokens"] == 1
        assert chat[0].attributes["gen_ai.usage.output_tokens"] == 2
        assert chat[0].attributes["gen_ai.response.model"] == "up"
