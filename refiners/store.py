"""Persona profiles that persist across sessions, keyed by (tenant, user): SQLite by default,
PostgreSQL when a ``postgresql://`` DSN is configured. Replicas share profiles through PostgreSQL.

The tenant is the inbound API key's name (``REIN_API_KEYS=team-a:key1``), or ``default`` when
the server checks no keys: the ``user`` field is the client's to choose, so without the tenant
any client could read or overwrite any other's users. What is stored is only the profile
(name, language, tone, units, preferences, constraints) and when it was last updated.

    store = open_store("postgresql://rein@db/rein", ttl_days=90)   # or a file path; None → REIN_PERSONA_DB
    await store.put("u-42", {"name": "Dana", "units": "metric"}, tenant="team-a")
    await store.get("u-42", tenant="team-a")      # {'name': 'Dana', 'units': 'metric'}
    await store.get("u-42", tenant="team-b")      # None
    await store.delete("u-42", tenant="team-a")   # True

``remember`` (used after a reply is sent) extracts what the user said about themselves and
merges it into their stored profile.
"""
from __future__ import annotations

import asyncio
import collections
import os
import sqlite3
from typing import Any, Protocol

from policies.tenant_store import (DEFAULT_TENANT, TENANT, PostgresTenantStore, SQLiteTenantStore, Table,  # noqa: F401
                                   tenant)
from refiners.profile import extract_profile, merge_profiles, parse_profile

DEFAULT_PATH = "./rein-personas.db"
MAX_ERRORS = 100
# TENANT (re-exported) is set once where a request is authenticated (middleware/proxy/ops ApiKeys)
# and copied into every task the request starts (a stream's run, the profile update after the
# reply), so no route, and no later change to one, can forget to pass it on.


class PersonaStore(Protocol):
    async def get(self, user: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None: ...

    async def put(self, user: str, profile: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None: ...

    async def delete(self, user: str, tenant: str = DEFAULT_TENANT) -> bool: ...

    async def close(self) -> None: ...


def _check(value: str, what: str = "user") -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ValueError(f"a {what} id is a non-empty string of at most 256 characters")
    return value


_PROFILES = Table("rein_profiles", key="user_id", value="profile")
# Profiles stored before tenants existed were written by whichever client named the user: they
# go to the default tenant, the one a server without keys uses.
_MIGRATE = ("INSERT INTO rein_profiles (tenant, user_id, profile, updated_at) "
            "SELECT '" + DEFAULT_TENANT + "', user_id, profile, updated_at FROM rein_personas")


class _Checked:
    """User and tenant ids are checked before they reach the database: the client chooses them."""

    async def get(self, user: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        return await super().get(_check(user), tenant=_check(tenant, "tenant"))

    async def put(self, user: str, profile: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
        await super().put(_check(user), profile, tenant=_check(tenant, "tenant"))

    async def delete(self, user: str, tenant: str = DEFAULT_TENANT) -> bool:
        return await super().delete(_check(user), tenant=_check(tenant, "tenant"))


class SQLiteStore(_Checked, SQLiteTenantStore):
    """Profiles in one SQLite file (``policies.tenant_store``: 0600, WAL, a connection per call)."""
    TABLE = _PROFILES

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH, ttl_days: float | None = None):
        super().__init__(path, ttl_days)

    def _setup(self, conn: sqlite3.Connection) -> None:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'rein_personas'").fetchone():
            conn.execute(_MIGRATE + " WHERE true ON CONFLICT DO NOTHING")
            conn.execute("DROP TABLE rein_personas")


class PostgresStore(_Checked, PostgresTenantStore):
    """Profiles in PostgreSQL, shared by replicas."""
    TABLE = _PROFILES

    async def _setup(self, conn: Any) -> None:
        if (await (await conn.execute("SELECT to_regclass('rein_personas')")).fetchone())[0]:
            await conn.execute(_MIGRATE + " ON CONFLICT DO NOTHING")
            await conn.execute("DROP TABLE rein_personas")


def open_store(url_or_path: str | None = None, ttl_days: float | None = None) -> PersonaStore:
    """``postgresql://…`` → PostgreSQL; anything else is a SQLite file (default REIN_PERSONA_DB,
    else ./rein-personas.db). Nothing is opened until the first call. ``ttl_days``: a profile not
    updated for that long is no longer read, and is deleted at the next write."""
    target = url_or_path or os.environ.get("REIN_PERSONA_DB") or DEFAULT_PATH
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresStore(target, ttl_days)
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    return SQLiteStore(target, ttl_days)


async def remember(store: PersonaStore, user: str, messages: list[Any],
                   learned: dict[str, Any] | None = None, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
    """Merge what the user said about themselves into their stored profile; the stored profile
    (None when there was nothing to learn). An invalid stored profile is replaced, not merged.
    ``learned``: the profile already extracted from ``messages``, when the caller has it."""
    learned = extract_profile(messages) if learned is None else learned
    if not learned:
        return None
    current = await store.get(user, tenant=tenant)
    valid = parse_profile(current, "store") if current else None
    merged = merge_profiles(valid.model_dump(exclude_defaults=True) if valid else None, learned)
    if merged and merged != current and parse_profile(merged, "dialogue") is not None:
        await store.put(user, merged, tenant=tenant)
        return merged
    return current


class ProfileKeeper:
    """The pipeline's side of the store: look a profile up before the draft (bounded wait, fails
    open) and learn from the dialogue after the reply, as a background task. Both act for the
    request's tenant (``TENANT``, set by the proxy from the API key).

        keeper = ProfileKeeper(open_store())
        profile = await keeper.lookup("u-42", request_profile)
        keeper.remember_later("u-42", messages)   # returns at once
    """

    def __init__(self, store: PersonaStore, timeout_s: float = 1.0):
        self.store = store
        self.timeout_s = timeout_s
        self.pending: set[asyncio.Task] = set()
        # The newest failures only: one is added per failed update, and a server runs for months.
        self.errors: collections.deque[str] = collections.deque(maxlen=MAX_ERRORS)
        self.failures = 0

    async def lookup(self, user: str | None, given: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
        """(profile, note): the stored profile with the request's on top; note says what failed."""
        if not user:
            return given, ""
        try:
            stored = await asyncio.wait_for(self.store.get(user, tenant=TENANT.get()), self.timeout_s)
        except Exception as e:  # fail open: the turn goes on with what the request carried
            return given, f"persona store: {type(e).__name__}: {e!s:.80}"
        valid = parse_profile(stored, "store") if stored else None
        return merge_profiles(valid.model_dump(exclude_defaults=True) if valid else None, given), ""

    def remember_later(self, user: str | None, messages: list[Any]) -> asyncio.Task | None:
        learned = extract_profile(messages) if user else None
        if not learned:
            return None
        task = asyncio.create_task(self._remember(user, messages, learned, TENANT.get()))
        self.pending.add(task)  # held so it is not collected mid-flight
        task.add_done_callback(self.pending.discard)
        return task

    async def _remember(self, user: str, messages: list[Any], learned: dict[str, Any], tenant: str) -> None:
        try:
            await remember(self.store, user, messages, learned, tenant)
        except Exception as e:  # off the critical path: recorded, never raised into a reply
            self.failures += 1
            self.errors.append(f"{type(e).__name__}: {e!s:.120}")

    async def drain(self) -> None:
        """Wait for profile updates in flight (tests, shutdown)."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
