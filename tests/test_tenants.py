"""Persona profiles per tenant (issue 14, defect 1): the key is (tenant, user), the tenant being the
name the operator gave the inbound API key. Replays the red-team attack: two keys, one ``user``."""
from __future__ import annotations

import os
import sqlite3
import stat
import time

import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from middleware.proxy.ops.guards import ApiKeys, parse_key
from policies.loader import load_policy
from refiners.store import MAX_ERRORS, ProfileKeeper, open_store, tenant
from tests.fake_upstream import asgi_client, openai_client

ADMIN = {"x-rein-admin-key": "op-secret", "authorization": "Bearer key1"}  # with keys on, every route needs one
KEYS = ["team-a:key1", "team-b:key2"]


def proxy(store, replies, policy="default", api_keys=KEYS):
    engine = Engine(ScriptedModel(replies), load_policy(policy) if isinstance(policy, str) else policy,
                    personas=store)
    return engine, create_app(Settings(policy="default", admin_key="op-secret", api_keys=api_keys), engine)


async def test_the_red_team_attack_leaves_alice_of_team_a_untouched(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    engine, app = proxy(store, ["Noted, Zelda.", "Noted, Mallory."])
    async with openai_client(app, api_key="key1") as a:
        await a.chat.completions.create(model="m", user="alice", messages=[
            {"role": "user", "content": "My name is Zelda. I am diabetic."}])
    await engine.profiles.drain()
    async with openai_client(app, api_key="key2") as b:
        await b.chat.completions.create(model="m", user="alice", messages=[
            {"role": "user", "content": "My name is Mallory. I prefer wire transfers to account 999."}])
    await engine.profiles.drain()
    async with asgi_client(app) as c:
        team_a = await c.get("/v1/rein/profiles/alice?tenant=team-a", headers=ADMIN)
        team_b = await c.get("/v1/rein/profiles/alice?tenant=team-b", headers=ADMIN)
        default = await c.get("/v1/rein/profiles/alice", headers=ADMIN)
    assert team_a.status_code == 200, team_a.text
    assert team_a.json()["profile"] == {"name": "Zelda", "constraints": ["diabetic"]}
    assert team_b.json()["profile"] == {"name": "Mallory", "preferences": ["wire transfers to account 999"]}
    assert default.status_code == 404 and default.json()["error"]["code"] == "profile_not_found"


async def test_a_tenant_reads_only_its_own_users_profile(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    await store.put("alice", {"units": "metric"}, tenant="team-a")
    _, app = proxy(store, ["It is 3 miles away."] * 2)
    async with openai_client(app, api_key="key1") as a, openai_client(app, api_key="key2") as b:
        mine = await a.chat.completions.create(model="m", user="alice", messages=[{"role": "user", "content": "How far?"}])
        theirs = await b.chat.completions.create(model="m", user="alice", messages=[{"role": "user", "content": "How far?"}])
    assert mine.choices[0].message.content == "It is 4.8 km away."
    assert theirs.choices[0].message.content == "It is 3 miles away."  # team-b's alice has no profile


async def test_admin_deletes_one_tenants_profile_only(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    await store.put("alice", {"name": "Zelda"}, tenant="team-a")
    await store.put("alice", {"name": "Mallory"}, tenant="team-b")
    _, app = proxy(store, [])
    async with asgi_client(app) as c:
        r = await c.delete("/v1/rein/profiles/alice?tenant=team-b", headers=ADMIN)
    assert r.status_code == 200 and r.json() == {"object": "rein.profile.deleted", "tenant": "team-b",
                                                 "user": "alice", "deleted": True}
    assert await store.get("alice", "team-a") == {"name": "Zelda"} and await store.get("alice", "team-b") is None


def test_named_and_unnamed_keys():
    assert parse_key("team-a:sk-1") == ("team-a", "sk-1")
    assert parse_key("sk-1") == (None, "sk-1")  # the older, unnamed form
    keys = ApiKeys(app=None, keys=["team-a:sk-1", "sk-2"])
    assert keys.check("sk-1") == "team-a"
    assert keys.check("team-a:sk-1") is None  # the name is not part of the key
    assert keys.check("sk-2") not in (None, "team-a", "default")  # an unnamed key is a tenant of its own


async def test_unnamed_keys_still_work_and_are_kept_apart(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    engine, app = proxy(store, ["Noted."] * 2, api_keys=["sk-one", "sk-two"])
    for key, name in (("sk-one", "Zelda"), ("sk-two", "Mallory")):
        async with openai_client(app, api_key=key) as client:
            await client.chat.completions.create(model="m", user="alice",
                                                 messages=[{"role": "user", "content": f"My name is {name}."}])
        await engine.profiles.drain()
    one = ApiKeys(app=None, keys=["sk-one"]).check("sk-one")
    assert await store.get("alice", one) == {"name": "Zelda"}


async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path):
    path = tmp_path / "personas.db"
    await open_store(str(path)).put("alice", {"name": "Zelda", "constraints": ["diabetic"]})
    for name in (path, tmp_path / "personas.db-wal"):
        if name.exists():
            assert stat.S_IMODE(os.stat(name).st_mode) == 0o600, name
    old = tmp_path / "old.db"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    await open_store(str(old)).get("alice")
    assert stat.S_IMODE(os.stat(old).st_mode) == 0o600  # a file an older rein created is tightened


async def test_profiles_from_before_tenants_move_to_the_default_tenant(tmp_path):
    path = str(tmp_path / "personas.db")
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE rein_personas (user_id TEXT PRIMARY KEY, profile TEXT NOT NULL, updated_at REAL NOT NULL)")
    conn.execute("INSERT INTO rein_personas VALUES ('alice', '{\"name\": \"Zelda\"}', ?)", (time.time(),))
    conn.commit()
    conn.close()
    store = open_store(path)
    assert await store.get("alice") == {"name": "Zelda"}
    assert await store.get("alice", "team-a") is None


async def test_profiles_expire_after_ttl_days(tmp_path):
    path = str(tmp_path / "personas.db")
    store = open_store(path, ttl_days=30)
    await store.put("old", {"name": "Ada"})
    await store.put("new", {"name": "Bo"})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE rein_profiles SET updated_at = ? WHERE user_id = 'old'", (time.time() - 31 * 86400,))
    conn.commit()
    conn.close()
    assert await store.get("old") is None and await store.get("new") == {"name": "Bo"}
    await store.put("new", {"name": "Bo", "units": "metric"})  # a write removes what expired
    assert sqlite3.connect(path).execute("SELECT user_id FROM rein_profiles").fetchall() == [("new",)]
    assert await open_store(path).get("old") is None


async def test_learning_can_be_switched_off_per_policy(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    await store.put("alice", {"units": "metric"})
    policy = load_policy("default")
    quiet = policy.model_copy(update={"refiners": policy.refiners.model_copy(update={"learn_profiles": False})})
    engine, app = proxy(store, ["Noted.", "It is 3 miles away."], policy=quiet, api_keys=[])
    async with openai_client(app) as client:
        await client.chat.completions.create(model="m", user="alice",
                                             messages=[{"role": "user", "content": "My name is Zelda."}])
        await engine.profiles.drain()
        read = await client.chat.completions.create(model="m", user="alice",
                                                    messages=[{"role": "user", "content": "How far?"}])
    assert await store.get("alice") == {"units": "metric"}  # nothing learned
    assert read.choices[0].message.content == "It is 4.8 km away."  # the stored profile is still read


async def test_sdk_callers_pick_the_tenant_with_a_context(tmp_path):
    store = open_store(str(tmp_path / "personas.db"))
    keeper = ProfileKeeper(store)
    from policies.messages import parse_messages

    with tenant("team-c"):
        keeper.remember_later("alice", parse_messages([{"role": "user", "content": "Call me Ari."}]))
    await keeper.drain()
    assert await store.get("alice", "team-c") == {"name": "Ari"} and await store.get("alice") is None


async def test_failed_updates_keep_a_bounded_list_of_errors():
    class Broken:
        async def get(self, user, tenant="default"):
            raise OSError("disk on fire")

    from policies.messages import parse_messages

    keeper = ProfileKeeper(Broken())
    said = parse_messages([{"role": "user", "content": "Call me Ari."}])
    for _ in range(MAX_ERRORS + 50):
        keeper.remember_later("alice", said)
    await keeper.drain()
    assert keeper.failures == MAX_ERRORS + 50 and len(keeper.errors) == MAX_ERRORS


def test_admin_key_is_compared_through_digests_of_one_length(monkeypatch):
    import hmac

    from middleware.proxy.ops import admin

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(admin.hmac, "compare_digest", lambda a, b: calls.append((len(a), len(b))) or real(a, b))
    class Req:  # the guard alone: the length of what was presented must not change what is compared
        class app:  # noqa: N801
            class state:  # noqa: N801
                settings = Settings(admin_key="op-secret")
                engine = None

        def __init__(self, key: str):
            self.headers = {"x-rein-admin-key": key}

    for key in ("x", "op-secre", "op-secret", "op-secret-and-more" * 10):
        admin._denied(Req(key))
    assert calls == [(32, 32)] * 4
