"""Stored Responses for ``previous_response_id`` and ``GET``/``DELETE /v1/responses/{id}``.

The same two backends as persona profiles (refiners/store.py): a SQLite file by default,
PostgreSQL for replicas. Every row is keyed by tenant (the inbound key's id) and response id,
so one tenant can neither read nor delete another's responses. With no store configured the
proxy stays stateless and ``previous_response_id`` is refused.

    store = open_response_store("./rein-responses.db")
    await store.put("team-a", "resp_1", {"response": {...}, "context": [...]})
    await store.get("team-a", "resp_1")     # the record; None for another tenant
"""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

_TABLE = ("CREATE TABLE IF NOT EXISTS rein_responses (tenant TEXT NOT NULL, id TEXT NOT NULL, "
          "record {kind} NOT NULL, created_at {time} NOT NULL, PRIMARY KEY (tenant, id))")


class ResponseStore(Protocol):
    async def get(self, tenant: str, resp_id: str) -> dict[str, Any] | None: ...

    async def put(self, tenant: str, resp_id: str, record: dict[str, Any]) -> None: ...

    async def delete(self, tenant: str, resp_id: str) -> bool: ...


class SQLiteResponses:
    """One file, readable by its owner only (0600: it holds the full input text, like the persona
    store); short-lived connections in a worker thread, WAL for readers beside a writer."""

    def __init__(self, path: str):
        self.path = path
        self._ready = False

    def _run(self, sql: str, args: tuple) -> Any:
        if not self._ready and self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
            for suffix in ("", "-wal", "-shm"):  # tighten a file an older rein created 0644
                if os.path.exists(self.path + suffix):
                    os.chmod(self.path + suffix, 0o600)
        conn = sqlite3.connect(self.path, timeout=5.0)
        try:
            if not self._ready:
                if self.path != ":memory:":
                    conn.execute("PRAGMA journal_mode=WAL")  # -wal/-shm take the database file's mode
                conn.execute(_TABLE.format(kind="TEXT", time="REAL"))
                self._ready = True
            cur = conn.execute(sql, args)
            conn.commit()
            return cur.fetchone() if sql.startswith("SELECT") else cur.rowcount
        finally:
            conn.close()

    async def get(self, tenant: str, resp_id: str) -> dict[str, Any] | None:
        row = await asyncio.to_thread(self._run, "SELECT record FROM rein_responses WHERE tenant = ? AND id = ?",
                                      (tenant, resp_id))
        return json.loads(row[0]) if row else None

    async def put(self, tenant: str, resp_id: str, record: dict[str, Any]) -> None:
        await asyncio.to_thread(self._run, "INSERT OR REPLACE INTO rein_responses VALUES (?, ?, ?, ?)",
                                (tenant, resp_id, json.dumps(record), time.time()))

    async def delete(self, tenant: str, resp_id: str) -> bool:
        return bool(await asyncio.to_thread(self._run, "DELETE FROM rein_responses WHERE tenant = ? AND id = ?",
                                            (tenant, resp_id)))


class PostgresResponses:
    """psycopg 3, one async connection per process, reconnected once when it drops."""

    def __init__(self, dsn: str):
        self.dsn = dsn
        self._conn = None
        self._lock = asyncio.Lock()

    async def _execute(self, sql: str, args: tuple, fetch: bool = False) -> Any:
        import psycopg

        async with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5)
                        await self._conn.execute(_TABLE.format(kind="JSONB", time="TIMESTAMPTZ"))
                    cur = await self._conn.execute(sql, args)
                    return await cur.fetchone() if fetch else cur.rowcount
                except psycopg.OperationalError:
                    self._conn = None
                    if attempt == 2:
                        raise

    async def get(self, tenant: str, resp_id: str) -> dict[str, Any] | None:
        row = await self._execute("SELECT record FROM rein_responses WHERE tenant = %s AND id = %s",
                                  (tenant, resp_id), fetch=True)
        return row[0] if row else None

    async def put(self, tenant: str, resp_id: str, record: dict[str, Any]) -> None:
        await self._execute("INSERT INTO rein_responses VALUES (%s, %s, %s::jsonb, now()) ON CONFLICT (tenant, id) "
                            "DO UPDATE SET record = EXCLUDED.record", (tenant, resp_id, json.dumps(record)))

    async def delete(self, tenant: str, resp_id: str) -> bool:
        return bool(await self._execute("DELETE FROM rein_responses WHERE tenant = %s AND id = %s", (tenant, resp_id)))


def open_response_store(target: str | None) -> ResponseStore | None:
    """``postgresql://…`` → PostgreSQL, a path or ``sqlite:///path`` → SQLite, None → no store."""
    if not target:
        return None
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresResponses(target)
    return SQLiteResponses(target[len("sqlite:///"):] if target.startswith("sqlite:///") else target)
