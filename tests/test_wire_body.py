"""Pay only for what changes (issue 24): when no stage changes a non-streaming chat request, the
upstream gets the client's bytes as they came; when one does (a plan planted), the request rein built."""
from __future__ import annotations

import orjson
from aiohttp import web
from fake_upstream import asgi_client, completion, free_port

from middleware.config import Settings
from middleware.models.openai_compat import WireBody
from middleware.proxy import create_app
from policies.chat_model import ModelRequest
from policies.messages import UserMessage

TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]


def user(text: str) -> UserMessage:
    return UserMessage(content=text)


async def _through_rein(body: bytes) -> tuple[list[bytes], dict[str, str]]:
    seen: list[bytes] = []

    async def chat(request: web.Request) -> web.Response:
        raw = await request.read()
        seen.append(raw)
        return web.Response(body=orjson.dumps(completion(orjson.loads(raw))), content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        rein = create_app(Settings(upstream=f"http://127.0.0.1:{port}/v1", policy="structural"))
        async with asgi_client(rein) as client:
            r = await client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
        return seen, dict(r.headers)
    finally:
        await runner.cleanup()


async def test_a_turn_no_stage_changes_goes_upstream_as_the_client_sent_it():
    # Spacing, key order and a field rein does not know: none of it is what rein would write itself.
    body = (b'{ "temperature": 0.2, "messages": [ {"role": "user", "content": "Where is my order A1?"} ],'
            b'  "x_vendor": {"b": 1, "a": 2}, "model": "m" }')
    seen, headers = await _through_rein(body)
    assert headers.get("x-rein-diagnosis", "none") == "none"
    assert seen == [body]


async def test_a_turn_with_a_plan_goes_upstream_as_rein_rebuilt_it():
    messages = [{"role": "user", "content": "Where is my order A1?"},
                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                    "name": "get_order", "arguments": '{"order_id": "A1"}'}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "Error: upstream service timed out, try again later"}]
    body = orjson.dumps({"model": "m", "messages": messages, "tools": TOOLS})
    seen, headers = await _through_rein(body)
    assert headers["x-rein-diagnosis"].startswith("tool_failure")
    assert seen and seen[0] != body
    assert len(orjson.loads(seen[0])["messages"]) > len(messages)  # the planted plan went up


def test_the_wire_body_is_sent_only_while_the_request_holds_the_values_it_was_read_into():
    request = ModelRequest(messages=[user("hi")], model="m", extra={"temperature": 0.2})
    wire = WireBody.of_request(b"{}", request)
    assert wire.unchanged(request)
    assert wire.unchanged(request.model_copy())  # a copy of the same values
    assert not wire.unchanged(request.model_copy(update={"messages": [*request.messages, user("more")]}))
    assert not wire.unchanged(request.model_copy(update={"tools": TOOLS}))
    assert not wire.unchanged(request.model_copy(update={"model": "other"}))
    grown = request.model_copy()
    grown.messages.append(user("appended in place"))
    assert not wire.unchanged(grown)
    with_options = ModelRequest(messages=[user("hi")], model="m", extra={"stream_options": {"include_usage": True}})
    assert not WireBody.of_request(b"{}", with_options).unchanged(with_options)
    no_model = ModelRequest(messages=[user("hi")])
    assert not WireBody.of_request(b"{}", no_model).unchanged(no_model)
