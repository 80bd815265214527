"""Secrets stay secret: planted API keys and user content are grepped for in every log record
(all loggers at DEBUG), every span (names, attributes, events) and a real `rein serve` process's
output, and found nowhere unless the operator opts in. And the upstream is the operator's:
nothing a client sends can point rein at another host."""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
import respx

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel
from middleware.models.litellm_model import LiteLLMModel
from middleware.proxy import create_app
from tests.fake_upstream import FakeUpstream, ThreadedUpstream, asgi_client, free_port
from tests.spans import recording

INBOUND_KEY = "sk-rein-PLANTED-inbound-7f3a9c"
UPSTREAM_KEY = "sk-up-PLANTED-upstream-51d2e8"
USER_SECRET = "my passport number is PLANTED-X4471902"
SECRETS = (INBOUND_KEY, UPSTREAM_KEY, "PLANTED-X4471902")
URL = "/v1/chat/completions"
ROOT = Path(__file__).resolve().parents[1]
_exporter = recording()


class Everything(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''} {record.__dict__}")


@pytest.fixture
def logs():
    handler, root = Everything(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def span_text() -> str:
    out = []
    for s in _exporter.get_finished_spans():
        out.append(s.name + repr(dict(s.attributes or {})))
        out += [e.name + repr(dict(e.attributes or {})) for e in s.events]
        out.append(repr(s.status.description))
    return "\n".join(out)


def leaked(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


async def exercise(app, up: FakeUpstream) -> None:
    """Every kind of turn: answered, streamed, tool call, refused key, bad input, upstream failure."""
    good = {"authorization": f"Bearer {INBOUND_KEY}"}
    msgs = [{"role": "user", "content": USER_SECRET}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    async with asgi_client(app) as c:
        assert (await c.post(URL, json={"model": "m", "messages": msgs}, headers=good)).status_code == 200
        r = await c.post(URL, json={"model": "m", "messages": msgs, "stream": True}, headers=good)
        assert r.status_code == 200 and "[DONE]" in r.text
        assert (await c.post(URL, json={"model": "m", "messages": msgs, "tools": tools}, headers=good)).status_code == 200
        wrong = {"authorization": f"Bearer {INBOUND_KEY}x"}
        assert (await c.post(URL, json={"model": "m", "messages": msgs}, headers=wrong)).status_code == 401
        bad = {"model": "m", "messages": [{"role": "wizard", "content": USER_SECRET}]}
        assert (await c.post(URL, json=bad, headers=good)).status_code == 422
        assert (await c.post(URL, json={"model": "fake-500", "messages": msgs}, headers=good)).status_code == 502
        r = await c.post(URL, json={"model": "fake-break", "messages": msgs, "stream": True}, headers=good)
        assert '"error"' in r.text
    assert up.requests and all(s.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}" for s in up.requests)


@pytest.mark.parametrize("policy", ["passthrough", "structural", "default"])
async def test_no_key_or_user_content_in_logs_or_spans(policy, logs, monkeypatch):
    monkeypatch.delenv("REIN_TRACE_CONTENT", raising=False)
    _exporter.clear()
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, api_key=UPSTREAM_KEY, timeout=5)
        app = create_app(Settings(policy=policy, api_keys=[INBOUND_KEY], upstream_api_key=UPSTREAM_KEY),
                         Engine(agent, policy))
        await exercise(app, up)
        await agent.pool.close()
    assert _exporter.get_finished_spans(), "no spans were recorded: the grep below would prove nothing"
    assert leaked(span_text()) == []
    assert leaked("\n".join(logs)) == []


async def test_operator_opt_in_puts_content_on_spans_but_never_keys(logs, monkeypatch):
    monkeypatch.setenv("REIN_TRACE_CONTENT", "1")
    _exporter.clear()
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, api_key=UPSTREAM_KEY, timeout=5)
        app = create_app(Settings(policy="structural", api_keys=[INBOUND_KEY]), Engine(agent, "structural"))
        await exercise(app, up)
        await agent.pool.close()
    assert leaked(span_text()) == ["PLANTED-X4471902"]  # the grep finds content once it is allowed
    assert leaked("\n".join(logs)) == []


def test_served_process_output_has_no_secrets_even_at_debug():
    port = free_port()
    with ThreadedUpstream() as up:
        env = {**os.environ, "REIN_API_KEYS": INBOUND_KEY, "REIN_UPSTREAM_API_KEY": UPSTREAM_KEY}
        env.pop("REIN_TRACE_CONTENT", None)
        proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "serve", "--port", str(port),
                                 "--upstream", up.base_url, "--policy", "structural", "--log-level", "debug"],
                                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            good = {"authorization": f"Bearer {INBOUND_KEY}"}
            body = {"model": "m", "messages": [{"role": "user", "content": USER_SECRET}]}
            assert httpx.post(url + URL, json=body, headers=good, timeout=10).status_code == 200
            assert httpx.post(url + URL, json={**body, "stream": True}, headers=good, timeout=10).status_code == 200
            assert httpx.post(url + URL, json=body, headers={"authorization": "Bearer " + INBOUND_KEY[:-1]}).status_code == 401
            assert httpx.post(url + URL, json={**body, "model": "fake-500"}, headers=good, timeout=10).status_code == 502
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=20)
    assert "Uvicorn running" in out or "Application startup complete" in out  # we did read the log
    assert leaked(out) == []


@pytest.mark.parametrize("trick", [
    {"model": "http://127.0.0.9:1/v1"},
    {"base_url": "http://127.0.0.9:1/v1", "api_base": "http://127.0.0.9:1/v1"},
    {"api_key": "sk-attacker", "extra_headers": {"host": "127.0.0.9"}, "custom_llm_provider": "anthropic"},
])
async def test_a_client_cannot_redirect_the_fast_path(trick):
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, api_key=UPSTREAM_KEY)
        app = create_app(Settings(policy="structural"), Engine(agent, "structural"))
        async with asgi_client(app) as c:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], **trick}
            r = await c.post(URL, json=body, headers={"x-forwarded-host": "127.0.0.9", "x-rein-upstream": "http://127.0.0.9:1/v1"})
        assert r.status_code == 200 and len(up.requests) == 1  # it went to the configured upstream
        assert up.requests[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
        await agent.pool.close()


@pytest.mark.parametrize("trick", [
    {"api_base": "http://127.0.0.9:1/v1"},
    {"base_url": "http://127.0.0.9:1/v1"},
    {"api_key": "sk-attacker"},
    {"custom_llm_provider": "anthropic", "api_base": "http://127.0.0.9:1"},
    {"extra_headers": {"authorization": "Bearer sk-attacker"}},
])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_client_cannot_redirect_a_litellm_upstream(trick, stream):
    agent = LiteLLMModel("openai/gpt-x", api_key=UPSTREAM_KEY, api_base="http://upstream.test/v1", timeout=5)
    app = create_app(Settings(policy="passthrough"), Engine(agent, "passthrough"))
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if stream:
            chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-x",
                     "choices": [{"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
            return httpx.Response(200, content=b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n",
                                  headers={"content-type": "text/event-stream"})
        return httpx.Response(200, json={"id": "c", "object": "chat.completion", "created": 1, "model": "gpt-x",
                                         "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                                                      "finish_reason": "stop"}]})

    with respx.mock(assert_all_called=False) as mock:
        mock.post("http://upstream.test/v1/chat/completions").mock(side_effect=answer)
        async with asgi_client(app) as c:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream, **trick}
            r = await c.post(URL, json=body)
    assert r.status_code == 200, r.text
    assert len(seen) == 1 and seen[0].url.host == "upstream.test"
    assert seen[0].headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
