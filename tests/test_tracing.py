"""Spans the proxy emits, read with OpenTelemetry's in-memory exporter (GenAI semantic conventions)."""
from __future__ import annotations

import httpx
import pytest
from fake_upstream import FakeUpstream, asgi_client
from opentelemetry.trace import SpanKind, StatusCode

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel, ScriptedModel
from middleware.proxy import create_app
from policies.loader import shipped
from tests.spans import recording

POLICIES = [p for p in ("passthrough", "structural", "default") if p in shipped()]
SECRET = "my card number is 4111-XQZV"  # letters no hex id has: a random trace id cannot hold it
URL = "/v1/chat/completions"
_exporter = recording()


@pytest.fixture
def spans():
    _exporter.clear()
    return _exporter.get_finished_spans


@pytest.fixture(params=POLICIES)
async def proxy(request):
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url)
        app = create_app(Settings(policy=request.param), Engine(agent, request.param))
        async with asgi_client(app) as client:
            yield client
        await agent.pool.close()


def ask(stream: bool = False, model: str = "gpt-test") -> dict:
    return {"model": model, "stream": stream, "stream_options": {"include_usage": True} if stream else None,
            "messages": [{"role": "user", "content": SECRET}]}


def chat_span(finished):
    found = [s for s in finished() if s.name.startswith("chat ")]
    assert len(found) == 1, [s.name for s in finished()]
    return found[0]


def request_span(finished):
    found = [s for s in finished() if s.name == "rein.request"]
    assert len(found) == 1, [s.name for s in finished()]
    return found[0]


def all_values(finished) -> str:
    out = []
    for s in finished():
        out += [str(v) for v in s.attributes.values()]
        out += [str(v) for e in s.events for v in e.attributes.values()]
    return " ".join(out)


@pytest.mark.parametrize("stream", [False, True])
async def test_request_and_model_spans_follow_the_genai_conventions(proxy, spans, stream):
    resp = await proxy.post(URL, json=ask(stream))
    assert resp.status_code == 200
    chat, req = chat_span(spans), request_span(spans)
    assert chat.name == "chat gpt-test" and chat.kind == SpanKind.CLIENT
    assert chat.parent is not None and chat.parent.span_id == req.context.span_id
    assert chat.context.trace_id == req.context.trace_id
    a = chat.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-test"
    assert a["gen_ai.response.model"] == "fake-model"
    assert a["gen_ai.usage.input_tokens"] == 5 and a["gen_ai.usage.output_tokens"] == 6
    assert list(a["gen_ai.response.finish_reasons"]) == ["stop"]
    assert req.attributes["rein.policy"] == resp.headers["x-rein-policy"]


@pytest.mark.parametrize("stream", [False, True])
async def test_no_message_content_on_spans_by_default(proxy, spans, stream, monkeypatch):
    monkeypatch.delenv("REIN_TRACE_CONTENT", raising=False)
    assert (await proxy.post(URL, json=ask(stream))).status_code == 200
    assert "XQZV" not in all_values(spans)
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) for s in spans() for k in s.attributes)


@pytest.mark.parametrize("stream", [False, True])
async def test_content_on_spans_when_the_operator_opts_in(proxy, spans, stream, monkeypatch):
    monkeypatch.setenv("REIN_TRACE_CONTENT", "1")
    assert (await proxy.post(URL, json=ask(stream))).status_code == 200
    a = chat_span(spans).attributes
    assert SECRET in a["gen_ai.input.messages"]
    assert "Echo: " + SECRET in a["gen_ai.output.messages"]


@pytest.mark.parametrize("stream", [False, True])
async def test_a_failed_model_call_is_an_error_span(proxy, spans, stream):
    resp = await proxy.post(URL, json=ask(stream, model="fake-500"))
    assert resp.status_code == 502
    chat = chat_span(spans)
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "upstream_error"
    request_span(spans)  # the request span still ends


@pytest.mark.parametrize("stream", [False, True])
async def test_one_trace_per_request_with_the_model_call_under_reins_span(spans, stream):
    agent = ScriptedModel(["Fine."])
    app = create_app(Settings(policy="default"), Engine(agent, "default"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as client:
        assert (await client.post(URL, json=ask(stream))).status_code == 200
    req, chat = request_span(spans), chat_span(spans)
    assert chat.name == "chat gpt-test" and chat.attributes["gen_ai.provider.name"] == "rein.test"
    by_id = {s.context.span_id: s for s in spans()}
    roots = [s for s in spans() if s.parent is None]
    assert len(roots) == 1 and all(s.context.trace_id == req.context.trace_id for s in spans())
    chain, node = [], chat
    while node.parent is not None:
        node = by_id[node.parent.span_id]
        chain.append(node.name)
    assert "rein.request" in chain, chain
