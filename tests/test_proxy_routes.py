"""Routing edges of the proxy: per-request policy choice, unknown paths and methods."""
import httpx

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_header_cannot_name_a_server_path(tmp_path):
    own = tmp_path / "ours.yaml"
    own.write_text("name: ours\ninception: {enabled: false}\nrefiners: {enabled: false}\n")
    stray = tmp_path / "stray.yaml"
    stray.write_text("name: stray\ninception: {enabled: false}\nrefiners: {enabled: false}\n")
    agent = ScriptedModel(["ok"], cycle=True)
    app = create_app(Settings(policy=str(own), allow_policy_header=True), Engine(agent, str(own)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/v1/chat/completions", json=BODY, headers={"x-rein-policy": str(stray)})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_policy"
        assert "passthrough" in r.json()["error"]["message"]
        r = await c.post("/v1/chat/completions", json=BODY, headers={"x-rein-policy": str(own)})
        assert r.status_code == 200 and r.headers["x-rein-policy"] == "ours"
        r = await c.post("/v1/chat/completions", json=BODY, headers={"x-rein-policy": "passthrough"})
        assert r.status_code == 200 and r.headers["x-rein-policy"] == "passthrough"


async def test_unknown_paths_and_methods_answer_in_openai_shape():
    app = create_app(Settings(policy="passthrough"), Engine(ScriptedModel(["ok"]), "passthrough"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/v1/nope")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert "/v1/nope" in r.json()["error"]["message"]
        r = await c.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["error"]["type"] == "invalid_request_error"
