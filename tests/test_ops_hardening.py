"""Serving defects of issue 20: the response store's file mode (5), the start-up line's password
(8), /metrics on hang-ups and per-route labels (9), auth errors and wrong-route answers a
newcomer can act on (12)."""
from __future__ import annotations

import argparse
import os
import stat

import orjson
import pytest
from fake_upstream import asgi_client
from protocol_doubles import app_for

from middleware.models import ScriptedModel
from middleware.proxy.response_store import SQLiteResponses
from tests.test_ops import _sample

HI = [{"role": "user", "content": "hi"}]


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


async def test_response_store_is_created_0600_and_an_older_file_tightened(tmp_path):
    fresh = tmp_path / "new" / "responses.db"
    store = SQLiteResponses(str(fresh))
    await store.put("resp_1", {"response": {"id": "resp_1"}, "context": [{"content": "secret"}]}, "team-a")
    assert mode(fresh) == 0o600
    assert all(mode(str(fresh) + s) == 0o600 for s in ("-wal", "-shm") if os.path.exists(str(fresh) + s))

    older = tmp_path / "old.db"
    await SQLiteResponses(str(older)).put("r", {"response": {}, "context": []}, "t")
    for suffix in ("", "-wal", "-shm"):  # as an older rein left it
        if os.path.exists(str(older) + suffix):
            os.chmod(str(older) + suffix, 0o644)
    assert await SQLiteResponses(str(older)).get("r", "t") is not None
    assert mode(older) == 0o600


def test_start_up_line_masks_the_upstream_password(monkeypatch, capsys):
    import uvicorn

    from middleware.commands import serve

    ran: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: ran.update(kw))
    for name in [k for k in os.environ if k.startswith("REIN_")]:
        monkeypatch.delenv(name)
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    args = parser.parse_args(["--upstream", "http://alice:s3cret-pw@127.0.0.1:9/v1", "--policy", "passthrough",
                              "--header-timeout", "3", "--max-idle-connections", "40"])
    assert serve.run(args) == 0
    err = capsys.readouterr().err
    assert "s3cret-pw" not in err and "http://alice:***@127.0.0.1:9/v1" in err, err
    from middleware.proxy.ops.conn_guard import IMPORT_PATH, GuardedHTTP

    assert ran["http"] == IMPORT_PATH  # uvicorn serves with the slow-header guard
    assert (GuardedHTTP.header_timeout_s, GuardedHTTP.max_idle) == (3.0, 40)


async def test_a_client_hang_up_is_no_500_and_each_route_has_its_label(caplog):
    import logging

    from middleware.proxy.ops.metrics import render_metrics

    caplog.set_level(logging.DEBUG, "rein.proxy")

    app = app_for(ScriptedModel(["fine"], cycle=True), "structural")
    before = render_metrics()[0].decode()

    async def gone():  # the client left before its body arrived
        return {"type": "http.disconnect"}

    sent: list = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/chat/completions", "raw_path": b"/v1/chat/completions", "query_string": b"",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
             "client": ("127.0.0.1", 5), "server": ("rein.test", 80), "root_path": ""}
    try:
        await app(scope, gone, send)
    except Exception:
        pass  # whatever the framework does with a vanished client, the count is what matters here
    async with asgi_client(app) as c:
        assert (await c.post("/v1/responses", json={"model": "m", "input": "hi"})).status_code == 200
        assert (await c.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HI})).status_code == 200
        after = (await c.get("/metrics")).text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a hang-up is no error in the log either
    grew = lambda name, **kw: _sample(after, name, **kw) - _sample(before, name, **kw)  # noqa: E731
    chat = {"http_route": "/v1/chat/completions"}
    assert grew("rein_requests_total", **chat, http_response_status_code="500") == 0
    assert grew("rein_requests_total", **chat, http_response_status_code="499") == 1
    assert grew("rein_errors_total", **chat) == 0
    assert grew("rein_requests_total", http_route="/v1/responses") == 1
    assert grew("rein_requests_total", http_route="/v1/messages") == 1
    assert grew("rein_requests_total", http_route="other") == 0


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}])
async def test_auth_errors_on_messages_are_anthropic_shaped_and_name_x_api_key(headers):
    app = app_for(ScriptedModel(["fine"], cycle=True), "structural", api_keys=["team-a:sk-good"])
    async with asgi_client(app) as c:
        r = await c.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HI}, headers=headers)
        ok = await c.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": HI},
                          headers={"x-api-key": "sk-good"})
        chat = await c.post("/v1/chat/completions", json={"messages": HI})
    assert r.status_code == 401
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error", body
    assert "x-api-key" in body["error"]["message"] and "Bearer" not in body["error"]["message"]
    assert ok.status_code == 200
    assert chat.status_code == 401 and "Authorization: Bearer" in chat.json()["error"]["message"]  # OpenAI's words


async def test_wrong_route_answers_say_which_route_fits():
    app = app_for(ScriptedModel(["fine"], cycle=True), "structural")
    async with asgi_client(app) as c:
        responses_body = await c.post("/v1/chat/completions", json={"model": "m", "input": "hi"})
        no_prefix = await c.post("/chat/completions", json={"messages": HI})
        unknown = await c.post("/nothing/here", json={})
    assert responses_body.status_code == 400
    assert "POST /v1/responses" in responses_body.json()["error"]["message"]
    assert no_prefix.status_code == 404 and "POST /v1/chat/completions" in no_prefix.json()["error"]["message"]
    assert unknown.status_code == 404 and "/v1" not in orjson.loads(unknown.content)["error"]["message"]
