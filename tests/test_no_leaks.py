"""Nothing internal reaches a client (issue 14, defects 4 and 5): error bodies, SSE error events,
headers and /v1/models name what failed, never hosts, ports or URLs (the log keeps them); and
/readyz says not ready, and why, when the upstream refuses every connection."""
from __future__ import annotations

import logging
import re

import orjson
import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, OpenAICompatModel
from middleware.proxy import create_app
from policies.loader import load_policy
from policies.chat_model import ModelError
from tests.fake_upstream import FakeUpstream, asgi_client, free_port

ADDRESS = re.compile(r"127\.0\.0\.1|localhost|:\d{4,5}\b|https?://")
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def dead_upstream() -> tuple[OpenAICompatModel, str]:
    port = free_port()  # nothing listens there: every connection is refused
    return OpenAICompatModel(f"http://127.0.0.1:{port}/v1", timeout=5), str(port)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("policy", ["passthrough", "structural", "default"])
async def test_a_refused_upstream_is_named_but_not_located(policy, stream, caplog):
    agent, port = dead_upstream()
    app = create_app(Settings(policy=policy), Engine(agent, policy))
    with caplog.at_level(logging.WARNING, logger="rein.upstream"):
        async with asgi_client(app) as c:
            r = await c.post("/v1/chat/completions", json={**CHAT, "stream": stream})
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "upstream_unreachable"
    assert r.json()["error"]["message"] == "upstream unreachable"
    assert not ADDRESS.search(r.text) and not any(ADDRESS.search(v) for v in r.headers.values())
    assert port in caplog.text  # the operator's log keeps where


async def test_fail_open_header_names_the_failure_not_the_middleware_models_address():
    def broken(request):
        raise ModelError("upstream unreachable: Cannot connect to host 10.9.8.7:9199 (http://rein-llm.internal:9199/v1)")

    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, timeout=5)
        policy = load_policy("default")
        policy = policy.model_copy(update={"inception": policy.inception.model_copy(update={"trigger": "always"})})
        engine = Engine(agent, policy, rein_model=FunctionModel(broken))  # rein's own model is asked every turn
        app = create_app(Settings(policy="default"), engine)
        failing = CHAT
        async with asgi_client(app) as c:
            plain = await c.post("/v1/chat/completions", json=failing)
            streamed = await c.post("/v1/chat/completions", json={**failing, "stream": True})
        await agent.pool.close()
    note = plain.headers.get("x-rein-fail-open", "")
    assert "unreachable" in note, plain.headers  # the stage failed open and says so
    assert "10.9.8.7" not in note and ":9199" not in note and "internal" not in note
    trailer = [line for line in streamed.text.split("\n") if line.startswith(": rein {")]
    assert trailer and "unreachable" in trailer[-1] and ":9199" not in trailer[-1]


async def test_models_never_lists_the_upstream_url_as_an_id():
    agent, port = dead_upstream()  # lists nothing: rein answers with its own entry
    app = create_app(Settings(policy="structural"), Engine(agent, "structural"))
    async with asgi_client(app) as c:
        r = await c.get("/v1/models")
    assert r.status_code == 200 and r.json()["data"], r.text
    assert not ADDRESS.search(r.text)


async def test_readyz_is_not_ready_while_the_upstream_refuses_and_says_why():
    agent, port = dead_upstream()
    app = create_app(Settings(policy="structural", ready_probe_ttl_s=0), Engine(agent, "structural"))
    async with asgi_client(app) as c:
        r = await c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["error"]["code"] == "not_ready" and "upstream unreachable" in r.json()["error"]["message"]
    assert not ADDRESS.search(r.text)


async def test_readyz_probe_is_cached_and_can_be_turned_off():
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, timeout=5)
        probes = []
        real = agent.probe

        async def counted():
            probes.append(1)
            return await real()

        agent.probe = counted
        app = create_app(Settings(policy="structural", ready_probe_ttl_s=60), Engine(agent, "structural"))
        async with asgi_client(app) as c:
            answers = [(await c.get("/readyz")).status_code for _ in range(5)]
        assert answers == [200] * 5 and len(probes) == 1  # polled five times, probed once
        await agent.pool.close()
    dead, _ = dead_upstream()
    app = create_app(Settings(policy="structural", ready_check_upstream=False), Engine(dead, "structural"))
    async with asgi_client(app) as c:
        assert (await c.get("/readyz")).status_code == 200  # the operator chose not to probe


def test_upstream_error_messages_are_redacted():
    from middleware.models.openai_compat import upstream_error

    err = upstream_error(503, orjson.dumps({"error": {"message": "no backend at http://10.0.0.5:8000/v1 (pod vllm-0:8000)"}}))
    assert err.status == 502 and "10.0.0.5" not in err.message and "8000" not in err.message
