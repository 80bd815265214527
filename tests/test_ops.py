"""Serving guards in front of the proxy: inbound keys, rate limit, body limit, drain, /metrics,
policy reload. Driven in-process through the real app and a fake upstream on loopback."""
from __future__ import annotations

import asyncio
import os
import time

import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import OpenAICompatModel, ScriptedModel
from middleware.proxy import create_app
from middleware.proxy.ops.guards import ApiKeys, RateLimit
from tests.fake_upstream import FakeUpstream, asgi_client

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}]}


def _app(up: FakeUpstream | None = None, **settings):
    settings = Settings(policy="passthrough", **settings)
    agent = OpenAICompatModel(up.base_url) if up else ScriptedModel(["hi"] * 50)
    return create_app(settings, Engine(agent, "passthrough"))


def _openai_shape(body: dict) -> None:
    assert set(body) == {"error"}
    assert {"message", "type", "code"} <= set(body["error"])


async def test_api_keys_reject_missing_or_wrong_key_in_openai_shape():
    async with FakeUpstream() as up, asgi_client(_app(up, api_keys=["sk-rein-one", "sk-rein-two"])) as c:
        for headers in ({}, {"authorization": "Bearer sk-wrong"}, {"authorization": "sk-rein-one"}):
            r = await c.post("/v1/chat/completions", json=CHAT, headers=headers)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == "Bearer"
            _openai_shape(r.json())
            assert r.json()["error"]["type"] == "authentication_error"
        assert up.requests == []  # nothing reached the upstream
        ok = await c.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-rein-two"})
        assert ok.status_code == 200
        ok = await c.post("/v1/chat/completions", json=CHAT, headers={"x-api-key": "sk-rein-one"})
        assert ok.status_code == 200
        # rein's key is for rein: it is not passed on to the upstream.
        assert all("sk-rein" not in str(seen.headers) for seen in up.requests)
        assert (await c.get("/healthz")).status_code == 200  # probes need no key
        assert (await c.get("/readyz")).status_code == 200


async def test_official_openai_client_sees_authentication_error():
    import openai

    from tests.fake_upstream import openai_client

    async with FakeUpstream() as up:
        app = _app(up, api_keys=["sk-rein-one"])
        async with openai_client(app, api_key="sk-nope") as client:
            with pytest.raises(openai.AuthenticationError) as e:
                await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            assert e.value.status_code == 401
        async with openai_client(app, api_key="sk-rein-one") as client:
            out = await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
            assert out.choices[0].message.content == "Echo: hi"


def test_key_check_compares_every_key_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((len(a), len(b))) or real(a, b))
    keys = ApiKeys(app=None, keys=["a", "b" * 40, "c" * 7])
    assert keys.check("a") is not None
    assert keys.check("b" * 39) is None
    # No early exit on a match and digests of one length, whatever the key lengths.
    assert calls == [(32, 32)] * 6


async def test_rate_limit_per_key_answers_429_with_retry_after():
    async with FakeUpstream() as up:
        app = _app(up, api_keys=["sk-a", "sk-b"], rate_limit_rpm=60, rate_limit_burst=2)
        async with asgi_client(app) as c:
            a = {"authorization": "Bearer sk-a"}
            assert [(await c.post("/v1/chat/completions", json=CHAT, headers=a)).status_code for _ in range(2)] == [200, 200]
            limited = await c.post("/v1/chat/completions", json=CHAT, headers=a)
            assert limited.status_code == 429
            assert limited.headers["retry-after"] == "1"
            _openai_shape(limited.json())
            assert limited.json()["error"]["type"] == "rate_limit_error"
            # another key has its own allowance
            assert (await c.post("/v1/chat/completions", json=CHAT, headers={"authorization": "Bearer sk-b"})).status_code == 200


def test_rate_limit_refills_and_forgets_old_keys():
    limit = RateLimit(app=None, per_minute=60, burst=1, max_keys=3)
    assert limit.take("k", now=0.0) == 0
    assert limit.take("k", now=0.1) == pytest.approx(0.9)
    assert limit.take("k", now=1.2) == 0  # a second later the token is back
    for i in range(10):
        limit.take(f"other{i}", now=2.0)
    assert len(limit.buckets) == 3


async def test_body_limit_declared_and_chunked():
    async with FakeUpstream() as up, asgi_client(_app(up, max_body_bytes=2000)) as c:
        big = {"model": "m", "messages": [{"role": "user", "content": "x" * 5000}]}
        r = await c.post("/v1/chat/completions", json=big)
        assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

        async def chunks():
            for _ in range(10):
                yield b" " * 500  # no content-length: a chunked upload

        r = await c.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        _openai_shape(r.json())

        async def small():
            yield b'{"model": "m", "messages": '
            yield b'[{"role": "user", "content": "hi"}]}'

        r = await c.post("/v1/chat/completions", content=small(), headers={"content-type": "application/json"})
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Echo: hi"
        assert up.requests and len(up.requests) == 1


async def test_drain_refuses_new_requests_but_keeps_probes_honest():
    async with FakeUpstream() as up:
        app = _app(up)
        async with asgi_client(app) as c:
            assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
            app.state.drain.draining = True
            r = await c.post("/v1/chat/completions", json=CHAT)
            assert r.status_code == 503 and r.headers["connection"] == "close"
            assert r.json()["error"]["code"] == "shutting_down"
            assert (await c.get("/readyz")).status_code == 503  # the load balancer stops routing here
            assert (await c.get("/healthz")).status_code == 200  # but the pod is not restarted


async def test_concurrency_limit_answers_503_in_openai_shape():
    async with FakeUpstream(slow_s=0.5) as up, asgi_client(_app(up, limit_concurrency=2)) as c:
        slow = {**CHAT, "model": "fake-slow"}
        results = await asyncio.gather(*[c.post("/v1/chat/completions", json=slow) for _ in range(4)])
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 200, 503, 503]
        over = next(r for r in results if r.status_code == 503)
        assert over.json()["error"]["code"] == "overloaded"
        assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200


def _sample(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
    return total


async def test_metrics_in_prometheus_format():
    async with FakeUpstream() as up:
        async with asgi_client(_app(up)) as c:
            before = (await c.get("/metrics")).text
            for _ in range(3):
                assert (await c.post("/v1/chat/completions", json=CHAT)).status_code == 200
            assert (await c.post("/v1/chat/completions", content=b"{nope")).status_code == 400
            assert (await c.post("/v1/chat/completions", json={**CHAT, "model": "fake-500"})).status_code == 502
            r = await c.get("/metrics")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        after = r.text
    route = {"http_route": "/v1/chat/completions"}
    grew = lambda name, **kw: _sample(after, name, **route, **kw) - _sample(before, name, **route, **kw)  # noqa: E731
    assert grew("rein_requests_total") == 5
    assert grew("rein_requests_total", http_response_status_code="200") == 3
    assert grew("rein_errors_total") == 2
    assert grew("rein_errors_total", error_type="502") == 1
    assert grew("rein_added_latency_milliseconds_count") == 3  # only answered turns report an overhead
    assert "# TYPE rein_added_latency_milliseconds histogram" in after


async def test_metrics_count_detections_and_refinements():
    from middleware.proxy.ops.metrics import instruments, render_metrics

    meters = instruments()
    before = render_metrics()[0].decode()
    meters.response_headers("/v1/chat/completions", [(b"x-rein-diagnosis", b"tool_error/http,repeated_call"),
                                                      (b"x-rein-refined", b"persona")])
    meters.body_piece(b': rein {"x-rein-refined": "factuality,coherence"}\n\n', {})
    after = render_metrics()[0].decode()
    for name, labels in [("rein_detections_total", {"rein_error_type": "tool_error/http"}),
                         ("rein_detections_total", {"rein_error_type": "repeated_call"}),
                         ("rein_refinements_total", {"rein_refiner": "persona"}),
                         ("rein_refinements_total", {"rein_refiner": "factuality"})]:
        assert _sample(after, name, **labels) - _sample(before, name, **labels) == 1, (name, labels)


async def test_policy_reload_only_from_configured_file(tmp_path):
    from policies.loader import PACKS

    path = tmp_path / "mine.yaml"
    text = (PACKS / "passthrough.yaml").read_text()
    path.write_text(text)
    settings = Settings(policy=str(path), policy_watch_s=0.05)
    engine = Engine(ScriptedModel(["hi"] * 10), str(path))
    app = create_app(settings, engine)
    reloader = app.state.reloader
    first = engine.default_policy
    # A broken edit is refused: the running policy stays.
    path.write_text("name: [unclosed")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert reloader.changed() and reloader.reload() is False
    assert engine.default_policy is first
    # A good edit is picked up by the mtime watch.
    path.write_text(text.replace("passthrough", "passthrough-v2", 1))
    os.utime(path, (time.time() + 10, time.time() + 10))
    reloader.start()
    for _ in range(100):
        if engine.default_policy is not first:
            break
        await asyncio.sleep(0.02)
    reloader._task.cancel()
    assert engine.default_policy is not first and reloader.reloads == 1
    async with asgi_client(app) as c:
        r = await c.post("/v1/chat/completions", json=CHAT)
        assert r.status_code == 200 and r.headers["x-rein-policy"] == engine.default_policy.name


async def test_a_request_naming_the_configured_file_gets_the_reloaded_policy(tmp_path):
    """x-rein-policy naming the operator's file builds what the file says now, not what it said when
    first loaded (the loader's cache was keyed by path alone)."""
    from policies.loader import PACKS

    path = tmp_path / "mine.yaml"
    text = (PACKS / "passthrough.yaml").read_text()
    path.write_text(text)
    engine = Engine(ScriptedModel(["hi"] * 10), str(path))
    app = create_app(Settings(policy=str(path), allow_policy_header=True), engine)
    async with asgi_client(app) as c:
        r = await c.post("/v1/chat/completions", json=CHAT, headers={"x-rein-policy": str(path)})
        assert r.headers["x-rein-policy"] == "passthrough"
        # Two edits, the second of the same size as the first: each is read, whatever the file's mtime says.
        for name in ("passthrough-v2", "passthrough-v3"):
            path.write_text(text.replace("passthrough", name, 1))
            assert app.state.reloader.reload()
            r = await c.post("/v1/chat/completions", json=CHAT, headers={"x-rein-policy": str(path)})
            assert r.status_code == 200 and r.headers["x-rein-policy"] == name == engine.default_policy.name


def test_shipped_policy_names_are_never_reloaded():
    engine = Engine(ScriptedModel(["hi"]), "passthrough")
    app = create_app(Settings(policy="passthrough"), engine)
    assert app.state.reloader.path is None and app.state.reloader.reload() is False


async def test_metric_labels_never_carry_user_ids():
    async with FakeUpstream() as up, asgi_client(_app(up)) as c:
        assert (await c.get("/v1/rein/profiles/u-secret-991")).status_code in (401, 404)
        text = (await c.get("/metrics")).text
    assert 'http_route="/v1/rein/profiles/{user}"' in text
    assert "u-secret-991" not in text
