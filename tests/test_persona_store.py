"""The persona store: SQLite by default, PostgreSQL with a DSN; profiles learned from the dialogue."""
from __future__ import annotations

import asyncio

import pytest

from policies.messages import parse_messages
from refiners.store import PostgresStore, ProfileKeeper, SQLiteStore, open_store, remember
from tests.pg import postgres_dsn  # noqa: F401  (session fixture)


@pytest.fixture
def sqlite_store(tmp_path):
    return open_store(str(tmp_path / "personas.db"))


def dialogue(*user_lines: str):
    raw = []
    for line in user_lines:
        raw += [{"role": "user", "content": line}, {"role": "assistant", "content": "Noted."}]
    return parse_messages(raw)


async def _roundtrip(store):
    assert await store.get("u-1") is None
    await store.put("u-1", {"name": "Dana", "constraints": ["vegetarian"]})
    await store.put("u-2", {"units": "metric"})
    assert await store.get("u-1") == {"name": "Dana", "constraints": ["vegetarian"]}
    await store.put("u-1", {"name": "Dana", "units": "imperial"})  # replaced, not appended
    assert await store.get("u-1") == {"name": "Dana", "units": "imperial"}
    assert await store.delete("u-1") is True
    assert await store.get("u-1") is None
    assert await store.delete("u-1") is False
    assert await store.get("u-2") == {"units": "metric"}  # deleting one user leaves the others


async def test_sqlite_store_roundtrip_and_delete(sqlite_store):
    assert isinstance(sqlite_store, SQLiteStore)
    await _roundtrip(sqlite_store)


async def test_sqlite_profiles_persist_across_store_instances(tmp_path):
    path = str(tmp_path / "p.db")
    await open_store(path).put("u-9", {"tone": "formal"})
    assert await open_store(path).get("u-9") == {"tone": "formal"}  # a new process sees it


def test_open_store_picks_the_backend(tmp_path, monkeypatch):
    assert isinstance(open_store("postgresql://rein@127.0.0.1:5/x"), PostgresStore)
    assert isinstance(open_store(f"sqlite:///{tmp_path}/a.db"), SQLiteStore)
    monkeypatch.setenv("REIN_PERSONA_DB", str(tmp_path / "env.db"))
    assert open_store().path == str(tmp_path / "env.db")


async def test_store_rejects_a_bad_user_id(sqlite_store):
    with pytest.raises(ValueError):
        await sqlite_store.get("")


async def test_remember_learns_from_the_dialogue_and_merges(sqlite_store):
    await sqlite_store.put("u-3", {"name": "Dana", "constraints": ["allergic to peanuts"]})
    learned = await remember(sqlite_store, "u-3", dialogue("I'm vegetarian. Please use metric units."))
    assert learned == {"name": "Dana", "constraints": ["allergic to peanuts", "vegetarian"], "units": "metric"}
    assert await sqlite_store.get("u-3") == learned
    assert await remember(sqlite_store, "u-3", dialogue("What's the weather?")) is None  # nothing to learn


async def test_invalid_stored_profile_is_replaced_not_merged(sqlite_store):
    await sqlite_store.put("u-4", {"tone": "shouty", "bogus": 1})
    keeper = ProfileKeeper(sqlite_store)
    profile, note = await keeper.lookup("u-4", {"name": "Ari"})
    assert profile == {"name": "Ari"} and note == ""  # the invalid stored profile is ignored
    await remember(sqlite_store, "u-4", dialogue("Call me Ari."))
    assert await sqlite_store.get("u-4") == {"name": "Ari"}


async def test_keeper_learns_in_the_background_and_fails_open(sqlite_store):
    keeper = ProfileKeeper(sqlite_store)
    task = keeper.remember_later("u-5", dialogue("My name is Lena. I prefer aisle seats."))
    assert task is not None and not task.done()  # returned at once; the work runs after
    await keeper.drain()
    assert await sqlite_store.get("u-5") == {"name": "Lena", "preferences": ["aisle seats"]}

    class Broken:
        async def get(self, user, tenant="default"):
            raise OSError("disk on fire")

    profile, note = await ProfileKeeper(Broken()).lookup("u-5", {"units": "metric"})
    assert profile == {"units": "metric"} and "OSError" in note


async def test_postgres_store_roundtrip_and_two_processes(postgres_dsn):
    one, two = open_store(postgres_dsn), open_store(postgres_dsn)  # two replicas, one database
    try:
        await _roundtrip(one)
        await one.put("shared", {"name": "Kim"})
        assert await two.get("shared") == {"name": "Kim"}
        assert await two.delete("shared") is True
        assert await one.get("shared") is None
        await asyncio.gather(*(two.put(f"c{i}", {"name": f"N{i}"}) for i in range(5)))
        assert [await one.get(f"c{i}") for i in range(5)] == [{"name": f"N{i}"} for i in range(5)]
    finally:
        await one.close()
        await two.close()
