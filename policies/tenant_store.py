"""Rows kept per tenant: the one base of rein's stores (persona profiles, stored responses), so every
store takes its arguments in one order (the key, the value, then the tenant, ``default`` when not
given) and no tenant can read, overwrite or delete another's rows. A SQLite file by default, PostgreSQL when a
``postgresql://`` DSN is configured (replicas share it).

The tenant is the inbound API key's name, or ``default`` when the server checks no keys. It is set
once where a request is authenticated (``TENANT``) and copied into every task the request starts.

    class Notes(SQLiteTenantStore):
        TABLE = Table("notes", key="note_id", value="body")
    store = Notes("./notes.db")
    await store.put("n-1", {"text": "hi"}, tenant="team-a")
    await store.get("n-1", tenant="team-a")      # {'text': 'hi'}
    await store.get("n-1", tenant="team-b")      # None
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Iterator

DEFAULT_TENANT = "default"
TENANT: ContextVar[str] = ContextVar("rein_tenant", default=DEFAULT_TENANT)


@contextlib.contextmanager
def tenant(name: str) -> Iterator[None]:
    """Run a block as ``name`` (SDK callers serving several tenants from one engine)."""
    if not isinstance(name, str) or not name or len(name) > 256:
        raise ValueError("a tenant id is a non-empty string of at most 256 characters")
    token = TENANT.set(name)
    try:
        yield
    finally:
        TENANT.reset(token)


@dataclass(frozen=True)
class Table:
    """A store's table: (tenant, key) is the primary key; the value is JSON; the time is when it was written."""
    name: str
    key: str
    value: str
    time: str = "updated_at"

    def create(self, kind: str, time: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self.name} (tenant TEXT NOT NULL, {self.key} TEXT NOT NULL, "
                f"{self.value} {kind} NOT NULL, {self.time} {time} NOT NULL, PRIMARY KEY (tenant, {self.key}))")


class SQLiteTenantStore:
    """One file, readable by its owner only (0600: it holds what users said); each call opens a
    short-lived connection in a worker thread (WAL lets several processes on one machine read while
    one writes). ``ttl_days``: a row not written for that long is no longer read, and is deleted at
    the next write."""
    TABLE: ClassVar[Table]

    def __init__(self, path: str | os.PathLike, ttl_days: float | None = None):
        self.path = str(path)
        self.ttl_s = ttl_days * 86400 if ttl_days else None
        self._ready = False

    def _setup(self, conn: sqlite3.Connection) -> None:
        """Once per process, after the table is made (a subclass migrates an older table here)."""

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
            conn.execute(self.TABLE.create("TEXT", "REAL"))
            self._setup(conn)
            conn.commit()
            self._ready = True
        return conn

    def _run(self, sql: str, args: tuple) -> Any:
        conn = self._connect()
        try:
            cur = conn.execute(sql, args)
            conn.commit()
            return cur.fetchone() if sql.startswith("SELECT") else cur.rowcount
        finally:
            conn.close()

    def _cutoff(self) -> float:
        return time.time() - self.ttl_s if self.ttl_s else float("-inf")

    async def get(self, key: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        t = self.TABLE
        row = await asyncio.to_thread(
            self._run, f"SELECT {t.value} FROM {t.name} WHERE tenant = ? AND {t.key} = ? AND {t.time} > ?",
            (tenant, key, self._cutoff()))
        return json.loads(row[0]) if row else None

    async def put(self, key: str, value: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
        t = self.TABLE
        await asyncio.to_thread(
            self._run, f"INSERT INTO {t.name} (tenant, {t.key}, {t.value}, {t.time}) VALUES (?, ?, ?, ?) "
                       f"ON CONFLICT(tenant, {t.key}) DO UPDATE SET {t.value} = excluded.{t.value}, "
                       f"{t.time} = excluded.{t.time}",
            (tenant, key, json.dumps(value), time.time()))
        if self.ttl_s:  # expired rows are not kept: removed whenever one is written
            await asyncio.to_thread(self._run, f"DELETE FROM {t.name} WHERE {t.time} <= ?", (self._cutoff(),))

    async def delete(self, key: str, tenant: str = DEFAULT_TENANT) -> bool:
        t = self.TABLE
        return bool(await asyncio.to_thread(self._run, f"DELETE FROM {t.name} WHERE tenant = ? AND {t.key} = ?",
                                            (tenant, key)))

    async def close(self) -> None:
        return None


class PostgresTenantStore:
    """psycopg 3, one async connection per process (reconnected once when it drops), autocommit."""
    TABLE: ClassVar[Table]

    def __init__(self, dsn: str, ttl_days: float | None = None):
        self.dsn = dsn
        self.ttl_s = ttl_days * 86400 if ttl_days else None
        self._conn = None
        self._lock = asyncio.Lock()

    async def _setup(self, conn: Any) -> None:
        """Once per connection, after the table is made (a subclass migrates an older table here)."""

    async def _open(self) -> Any:
        import psycopg

        conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5)
        await conn.execute(self.TABLE.create("JSONB", "TIMESTAMPTZ"))
        await self._setup(conn)
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

    async def get(self, key: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None:
        t = self.TABLE
        sql = f"SELECT {t.value} FROM {t.name} WHERE tenant = %s AND {t.key} = %s"
        args: tuple = (tenant, key)
        if self.ttl_s:
            sql, args = sql + f" AND {t.time} > now() - make_interval(secs => %s)", (*args, self.ttl_s)
        row = await self._execute(sql, args, fetch=True)
        return row[0] if row else None

    async def put(self, key: str, value: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None:
        t = self.TABLE
        await self._execute(
            f"INSERT INTO {t.name} (tenant, {t.key}, {t.value}, {t.time}) VALUES (%s, %s, %s::jsonb, now()) "
            f"ON CONFLICT (tenant, {t.key}) DO UPDATE SET {t.value} = EXCLUDED.{t.value}, {t.time} = now()",
            (tenant, key, json.dumps(value)))
        if self.ttl_s:
            await self._execute(f"DELETE FROM {t.name} WHERE {t.time} <= now() - make_interval(secs => %s)",
                                (self.ttl_s,))

    async def delete(self, key: str, tenant: str = DEFAULT_TENANT) -> bool:
        t = self.TABLE
        return bool(await self._execute(f"DELETE FROM {t.name} WHERE tenant = %s AND {t.key} = %s", (tenant, key)))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
