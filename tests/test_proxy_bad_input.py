"""Bad requests get 400/413/422 in OpenAI's error shape, say what is wrong, and never reach the model."""
from __future__ import annotations

import orjson
import pytest
from fake_upstream import FakeUpstream, asgi_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel, ScriptedModel
from middleware.proxy import create_app

URL = "/v1/chat/completions"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(params=["default", "passthrough"])
async def proxy(request):
    """(client, upstream requests seen) for a pipeline policy and for the passthrough fast path."""
    if request.param == "default":
        agent = ScriptedModel(["fine"], cycle=True)
        app = create_app(Settings(policy="default", max_body_bytes=4096), Engine(agent, "default"))
        async with asgi_client(app) as client:
            yield client, agent.requests
        return
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url)
        app = create_app(Settings(policy="passthrough", max_body_bytes=4096), Engine(agent, "passthrough"))
        async with asgi_client(app) as client:
            yield client, up.requests
        await agent.pool.close()


def error_of(resp, status: int) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    assert "Traceback" not in body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("raw, fragment", [
    (b'{"messages": [{"role": "user", "content": "hi"}', "not valid JSON"),
    (b"", "not valid JSON"),
    (b"\xff\xfe garbage", "not valid JSON"),
    (b'[{"role": "user", "content": "hi"}]', "must be a JSON object"),
])
async def test_malformed_json_is_400(proxy, raw, fragment):
    client, seen = proxy
    err = error_of(await client.post(URL, content=raw, headers={"content-type": "application/json"}), 400)
    assert fragment in err["message"] and err["type"] == "invalid_request_error" and err["code"] == "invalid_json"
    assert seen == []


async def test_missing_messages_is_400(proxy):
    client, seen = proxy
    err = error_of(await client.post(URL, json={"model": "m"}), 400)
    assert "'messages' is required" in err["message"] and err["param"] == "messages"
    assert seen == []


@pytest.mark.parametrize("body, param, fragment", [
    ({"messages": "hello"}, "messages", "messages"),
    ({"messages": []}, "messages", "at least 1"),
    ({"messages": [{"role": "user", "content": 42}]}, "messages.0.content",
     "messages.0.content: Input should be a valid string or a valid list"),
    ({"messages": [{"content": "no role"}]}, "messages.0.role", "Field required: one of system"),
    ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.tool_call_id", "Field required"),
    ({"messages": HI, "user": 5}, "user", "user: Input should be a valid string"),
    ({"messages": HI, "tool_choice": 5}, "tool_choice", "a valid string or a valid dictionary"),
    ({"messages": HI, "tools": "lookup"}, "tools", "tools"),
    ({"messages": HI, "tools": [{"type": "function", "function": {"description": "no name"}}]},
     "tools.0.function.name", "tools.0.function.name"),
    ({"messages": HI, "stream": {"yes": 1}}, "stream", "stream"),
    ({"messages": HI, "model": 7}, "model", "model"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": "c1"}]}]}, "messages.0.tool_calls.0.function",
     "function"),
])
async def test_wrong_types_are_422_naming_the_field(proxy, body, param, fragment):
    client, seen = proxy
    err = error_of(await client.post(URL, json=body), 422)
    assert err["param"] == param and fragment in err["message"], err
    assert err["code"] == "invalid_value"
    assert seen == []


async def test_unknown_role_is_422_and_names_the_role(proxy):
    client, seen = proxy
    err = error_of(await client.post(URL, json={"messages": [{"role": "wizard", "content": "hi"}]}), 422)
    assert "unknown role 'wizard'" in err["message"] and err["param"] == "messages.0.role"
    for role in ("system", "user", "assistant", "tool"):
        assert role in err["message"]  # says which roles would have worked
    assert seen == []


async def test_tool_message_without_a_matching_call_is_400(proxy):
    client, seen = proxy
    messages = [{"role": "user", "content": "cancel it"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "cancel", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "call_2", "content": "done"}]
    err = error_of(await client.post(URL, json={"messages": messages}), 400)
    assert "call_2" in err["message"] and "matches no earlier tool call" in err["message"]
    assert err["param"] == "messages.2.tool_call_id"
    ok = await client.post(URL, json={"messages": messages[:2] + [{**messages[2], "tool_call_id": "call_1"}]})
    assert ok.status_code == 200, ok.text
    assert len(seen) == 1


async def test_tool_message_before_any_call_is_400(proxy):
    client, _ = proxy
    err = error_of(await client.post(URL, json={"messages": [{"role": "tool", "tool_call_id": "x", "content": "1"}]}), 400)
    assert "'x'" in err["message"]


async def test_body_over_the_limit_is_413(proxy):
    client, seen = proxy
    big = {"messages": [{"role": "user", "content": "x" * 5000}]}
    err = error_of(await client.post(URL, json=big), 413)
    assert "4096" in err["message"] and err["code"] == "request_too_large"

    async def chunked():  # no Content-Length: the limit must hold while reading
        raw = orjson.dumps(big)
        for i in range(0, len(raw), 1000):
            yield raw[i:i + 1000]

    err = error_of(await client.post(URL, content=chunked(), headers={"content-type": "application/json"}), 413)
    assert "4096" in err["message"]
    assert seen == []
    assert (await client.post(URL, json={"messages": HI})).status_code == 200  # still serving


def test_default_limit_is_8_mib_and_configurable(monkeypatch):
    assert Settings().max_body_bytes == 8 * 1024 * 1024
    monkeypatch.setenv("REIN_MAX_BODY_BYTES", "1234")
    assert Settings.from_env().max_body_bytes == 1234
