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
import contextlib
import json
import os
import sqlite3
import time
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Iterator, Protocol

from refiners.profile import extract_profile, merge_profiles, parse_profile

DEFAULT_PATH = "./rein-personas.db"
DEFAULT_TENANT = "default"
MAX_ERRORS = 100
# Set once where a request is authenticated (middleware/proxy/ops.py ApiKeys) and copied into
# every task the request starts (a stream's run, the profile update after the reply), so no
# route, and no later change to one, can forget to pass it on.
TENANT: ContextVar[str] = ContextVar("rein_tenant", default=DEFAULT_TENANT)


@contextlib.contextmanager
def tenant(name: str) -> Iterator[None]:
    """Run a block as ``name`` (SDK callers serving several tenants from one engine)."""
    token = TENANT.set(_check(name, "tenant"))
    try:
        yield
    finally:
        TENANT.reset(token)


class PersonaStore(Protocol):
    async def get(self, user: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None: ...

    async def put(self, user: str, profile: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None: ...

    async def delete(self, user: str, tenant: str = DEFAULT_TENANT) -> bool: ...

    async def close(self) -> None: ...


def _check(value: str, what: str = "user") -> str:
    if not isinstance(value, str) or not value or len(value) > 256:
        raise ValueError(f"a {what} id is a non-empty string of at most 256 characters")
    return value


_TABLE = ("CREATE TABLE IF NOT EXISTS rein_profiles (tenant TEXT NOT NULL, user_id TEXT NOT NULL, "
          "profile {kind} NOT NULL, updated_at {time} NOT NULL, PRIMARY KEY (tenant, user_id))")
# Profiles stored before tenants existed were written by whichever client named the user: they
# go to the default tenant, the one a server without keys uses.
_MIGRATE = ("INSERT INTO rein_profiles (tenant, user_id, profile, updated_at) "
            "SELECT '" + DEFAULT_TENANT + "', user_id, profile, updated_at FROM rein_personas")


class SQLiteStore:
    """One file, readable by its owner only (0600: it holds names and health constraints); each
    call opens a short-lived connection in a worker thread (WAL lets several processes on one
    machine read while one writes)."""

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH, ttl_days: float | None = None):
        self.path = str(path)
        self.ttl_s = ttl_days * 86400 if ttl_days else None
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready and self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            for suffix in ("", "-wal", "-shm"):  # tighten a file an older rein created 0644
                if os.path.exists(self.path + suffix):
                    os.chmod(self.path + suffix, 0o600)
        conn = sqlite3.connect(self.path, timeout=5.0)
        if not self._ready:
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")  # -wal/-shm take the database file's mode
            conn.execute(_TABLE.format(kind="TEXT", time="REAL"))
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'rein_personas'").fetchone():
                conn.execute(_MIGRATE + " WHERE true ON CONFLICT DO NOTHING")
                conn.execute("DROP TABLE rein_personas")
            conn.commit()
            self._ready = True
        return conn

    def _run(self, sql: str, args: tuple) -> Any:
        conn = self._connect()
        try:
            cur = conn.execute(sql, args)
            conn.commit()
            return cur.fetchone() if sql.lstrip().upper().startswith("SELECT") else cur.rowcount
        finally:
            conn.close()

    def _cutoff(self) -> float:
        return time.time() - self.ttl_s if self.ttl_s else float("-inf")

    async def get(self, user: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        row = await asyncio.to_thread(
            self._run, "SELECT profile FROM rein_profiles WHERE tenant = ? AND user_id = ? AND updated_at > ?",
            (_check(tenant, "tenant"), _check(user), self._cutoff()))
        return json.loads(row[0]) if row else None

    async def put(self, user: str, profile: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
        await asyncio.to_thread(
            self._run, "INSERT INTO rein_profiles (tenant, user_id, profile, updated_at) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT(tenant, user_id) DO UPDATE SET profile = excluded.profile, "
                       "updated_at = excluded.updated_at",
            (_check(tenant, "tenant"), _check(user), json.dumps(profile), time.time()))
        if self.ttl_s:  # expired profiles are not kept: removed whenever one is written
            await asyncio.to_thread(self._run, "DELETE FROM rein_profiles WHERE updated_at <= ?", (self._cutoff(),))

    async def delete(self, user: str, tenant: str = DEFAULT_TENANT) -> bool:
        return bool(await asyncio.to_thread(self._run, "DELETE FROM rein_profiles WHERE tenant = ? AND user_id = ?",
                                            (_check(tenant, "tenant"), _check(user))))

    async def close(self) -> None:
        return None


class PostgresStore:
    """psycopg 3, one async connection per process (reconnected when it drops), autocommit."""

    def __init__(self, dsn: str, ttl_days: float | None = None):
        self.dsn = dsn
        self.ttl_s = ttl_days * 86400 if ttl_days else None
        self._conn = None
        self._lock = asyncio.Lock()

    async def _open(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5)
        await conn.execute(_TABLE.format(kind="JSONB", time="TIMESTAMPTZ"))
        if (await (await conn.execute("SELECT to_regclass('rein_personas')")).fetchone())[0]:
            await conn.execute(_MIGRATE + " ON CONFLICT DO NOTHING")
            await conn.execute("DROP TABLE rein_personas")
        return conn

    async def _execute(self, sql: str, args: tuple, fetch: bool = False) -> Any:
        import psycopg

        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await self._open()
                    cur = await self._conn.execute(sql, args)
                    return await cur.fetchone() if fetch else cur.rowcount
                except psycopg.OperationalError:
                    self._conn = None  # a dropped connection is retried once
                    if attempt == 2:
                        raise

    async def get(self, user: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        sql = "SELECT profile FROM rein_profiles WHERE tenant = %s AND user_id = %s"
        args: tuple = (_check(tenant, "tenant"), _check(user))
        if self.ttl_s:
            sql, args = sql + " AND updated_at > now() - make_interval(secs => %s)", (*args, self.ttl_s)
        row = await self._execute(sql, args, fetch=True)
        return row[0] if row else None

    async def put(self, user: str, profile: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
        await self._execute(
            "INSERT INTO rein_profiles (tenant, user_id, profile, updated_at) VALUES (%s, %s, %s::jsonb, now()) "
            "ON CONFLICT (tenant, user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
            (_check(tenant, "tenant"), _check(user), json.dumps(profile)))
        if self.ttl_s:
            await self._execute("DELETE FROM rein_profiles WHERE updated_at <= now() - make_interval(secs => %s)",
                                (self.ttl_s,))

    async def delete(self, user: str, tenant: str = DEFAULT_TENANT) -> bool:
        return bool(await self._execute("DELETE FROM rein_profiles WHERE tenant = %s AND user_id = %s",
                                        (_check(tenant, "tenant"), _check(user))))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


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
    current = await store.get(user, tenant)
    valid = parse_profile(current, "store") if current else None
    merged = merge_profiles(valid.model_dump(exclude_defaults=True) if valid else None, learned)
    if merged and merged != current and parse_profile(merged, "dialogue") is not None:
        await store.put(user, merged, tenant)
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
            stored = await asyncio.wait_for(self.store.get(user, TENANT.get()), self.timeout_s)
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
