"""Profiles through the proxy: looked up by the request's ``user``, given in ``metadata.rein_profile``,
learned after the reply, and read or deleted by the operator with the admin key."""
from __future__ import annotations

import json

import httpx
import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from refiners.store import open_store

URL = "/v1/chat/completions"
KEY = {"x-rein-admin-key": "op-secret"}


@pytest.fixture
def store(tmp_path):
    return open_store(str(tmp_path / "personas.db"))


def client_for(store, replies, admin_key="op-secret"):
    engine = Engine(ScriptedModel(replies), "default", personas=store)
    app = create_app(Settings(policy="default", admin_key=admin_key), engine)
    return engine, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test")


def chat(text: str, **extra):
    return {"model": "m", "messages": [{"role": "user", "content": text}], **extra}


async def test_stored_profile_shapes_the_reply_for_that_user(store):
    await store.put("u-1", {"units": "metric", "name": "Dana"})
    _, c = client_for(store, ["Hi Dan, the hotel is 3 miles from the station."] * 2)
    async with c:
        r = await c.post(URL, json=chat("How far is the hotel?", user="u-1"))
        other = await c.post(URL, json=chat("How far is the hotel?", user="u-2"))
    assert r.json()["choices"][0]["message"]["content"] == "Hi Dana, the hotel is 4.8 km from the station."
    assert r.headers["x-rein-refined"] == "persona"
    assert other.json()["choices"][0]["message"]["content"] == "Hi Dan, the hotel is 3 miles from the station."


async def test_metadata_profile_is_used_and_an_invalid_one_ignored(store):
    _, c = client_for(store, ["It weighs 10 lbs."] * 2)
    async with c:
        good = await c.post(URL, json=chat("How heavy?", metadata={"rein_profile": json.dumps({"units": "metric"})}))
        bad = await c.post(URL, json=chat("How heavy?", metadata={"rein_profile": "{not json"}))
    assert good.json()["choices"][0]["message"]["content"] == "It weighs 4.5 kg."
    assert bad.status_code == 200 and bad.json()["choices"][0]["message"]["content"] == "It weighs 10 lbs."


async def test_profile_is_learned_after_the_reply_and_used_next_session(store):
    engine, c = client_for(store, ["Sure, noted.", "The trail is 5 miles long."])
    async with c:
        first = await c.post(URL, json=chat("Please use metric units from now on.", user="u-7"))
        assert first.json()["choices"][0]["message"]["content"] == "Sure, noted."
        await engine.profiles.drain()  # the update ran in the background, after the reply
        assert await store.get("u-7") == {"units": "metric"}
        later = await c.post(URL, json=chat("How long is the trail?", user="u-7"))
    assert later.json()["choices"][0]["message"]["content"] == "The trail is 8 km long."


async def test_admin_endpoints_need_the_operators_key(store):
    await store.put("u-1", {"name": "Dana"})
    _, c = client_for(store, [])
    async with c:
        for headers in ({}, {"x-rein-admin-key": "wrong"}, {"authorization": "Bearer nope"}):
            r = await c.get("/v1/rein/profiles/u-1", headers=headers)
            assert r.status_code == 401
            assert set(r.json()["error"]) >= {"message", "type", "code"}
            assert (await c.delete("/v1/rein/profiles/u-1", headers=headers)).status_code == 401
    assert await store.get("u-1") == {"name": "Dana"}  # nothing was deleted


async def test_admin_reads_and_deletes_a_profile(store):
    await store.put("u-1", {"name": "Dana"})
    _, c = client_for(store, [])
    async with c:
        r = await c.get("/v1/rein/profiles/u-1", headers=KEY)
        assert r.status_code == 200 and r.json()["profile"] == {"name": "Dana"}
        r = await c.delete("/v1/rein/profiles/u-1", headers=KEY)
        assert r.status_code == 200 and r.json()["deleted"] is True
        assert (await c.get("/v1/rein/profiles/u-1", headers=KEY)).status_code == 404
        gone = await c.delete("/v1/rein/profiles/u-1", headers=KEY)
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "profile_not_found"
        bearer = await c.get("/v1/rein/profiles/u-1", headers={"authorization": "Bearer op-secret"})
        assert bearer.status_code == 404  # the bearer form is accepted too
    assert await store.get("u-1") is None


async def test_without_a_configured_admin_key_the_endpoints_refuse(store):
    _, c = client_for(store, [], admin_key=None)
    async with c:
        r = await c.get("/v1/rein/profiles/u-1", headers=KEY)
    assert r.status_code == 401 and r.json()["error"]["code"] == "admin_key_not_configured"
