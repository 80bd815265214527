"""Per-user persona profiles that persist across sessions: SQLite by default, PostgreSQL when a
``postgresql://`` DSN is configured. Replicas share profiles through PostgreSQL.

    store = open_store("postgresql://rein@db/rein")     # or a file path; None → REIN_PERSONA_DB
    await store.put("u-42", {"name": "Dana", "units": "metric"})
    await store.get("u-42")      # {'name': 'Dana', 'units': 'metric'}
    await store.delete("u-42")   # True

``remember`` (used after a reply is sent) extracts what the user said about themselves and
merges it into their stored profile.
"""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from refiners.profile import extract_profile, merge_profiles, parse_profile

DEFAULT_PATH = "./rein-personas.db"


class PersonaStore(Protocol):
    async def get(self, user: str) -> dict[str, Any] | None: ...

    async def put(self, user: str, profile: dict[str, Any]) -> None: ...

    async def delete(self, user: str) -> bool: ...

    async def close(self) -> None: ...


def _check_user(user: str) -> str:
    if not isinstance(user, str) or not user or len(user) > 256:
        raise ValueError("a user id is a non-empty string of at most 256 characters")
    return user


class SQLiteStore:
    """One file; each call opens a short-lived connection in a worker thread (WAL lets several
    processes on one machine read while one writes)."""

    def __init__(self, path: str | os.PathLike = DEFAULT_PATH):
        self.path = str(path)
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=5.0)
        if not self._ready:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS rein_personas (user_id TEXT PRIMARY KEY, "
                         "profile TEXT NOT NULL, updated_at REAL NOT NULL)")
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

    async def get(self, user: str) -> dict[str, Any] | None:
        row = await asyncio.to_thread(self._run, "SELECT profile FROM rein_personas WHERE user_id = ?",
                                      (_check_user(user),))
        return json.loads(row[0]) if row else None

    async def put(self, user: str, profile: dict[str, Any]) -> None:
        await asyncio.to_thread(
            self._run, "INSERT INTO rein_personas (user_id, profile, updated_at) VALUES (?, ?, ?) "
                       "ON CONFLICT(user_id) DO UPDATE SET profile = excluded.profile, updated_at = excluded.updated_at",
            (_check_user(user), json.dumps(profile), time.time()))

    async def delete(self, user: str) -> bool:
        return bool(await asyncio.to_thread(self._run, "DELETE FROM rein_personas WHERE user_id = ?",
                                            (_check_user(user),)))

    async def close(self) -> None:
        return None


class PostgresStore:
    """psycopg 3, one async connection per process (reconnected when it drops), autocommit."""

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
                        self._conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                                           connect_timeout=5)
                        await self._conn.execute(
                            "CREATE TABLE IF NOT EXISTS rein_personas (user_id TEXT PRIMARY KEY, "
                            "profile JSONB NOT NULL, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())")
                    cur = await self._conn.execute(sql, args)
                    return await cur.fetchone() if fetch else cur.rowcount
                except psycopg.OperationalError:
                    self._conn = None  # a dropped connection is retried once
                    if attempt == 2:
                        raise

    async def get(self, user: str) -> dict[str, Any] | None:
        row = await self._execute("SELECT profile FROM rein_personas WHERE user_id = %s", (_check_user(user),),
                                  fetch=True)
        return row[0] if row else None

    async def put(self, user: str, profile: dict[str, Any]) -> None:
        await self._execute(
            "INSERT INTO rein_personas (user_id, profile, updated_at) VALUES (%s, %s::jsonb, now()) "
            "ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
            (_check_user(user), json.dumps(profile)))

    async def delete(self, user: str) -> bool:
        return bool(await self._execute("DELETE FROM rein_personas WHERE user_id = %s", (_check_user(user),)))

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None


def open_store(url_or_path: str | None = None) -> PersonaStore:
    """``postgresql://…`` → PostgreSQL; anything else is a SQLite file (default REIN_PERSONA_DB,
    else ./rein-personas.db). Nothing is opened until the first call."""
    target = url_or_path or os.environ.get("REIN_PERSONA_DB") or DEFAULT_PATH
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresStore(target)
    if target.startswith("sqlite:///"):
        target = target[len("sqlite:///"):]
    return SQLiteStore(target)


async def remember(store: PersonaStore, user: str, messages: list[Any],
                   learned: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Merge what the user said about themselves into their stored profile; the stored profile
    (None when there was nothing to learn). An invalid stored profile is replaced, not merged.
    ``learned``: the profile already extracted from ``messages``, when the caller has it."""
    learned = extract_profile(messages) if learned is None else learned
    if not learned:
        return None
    current = await store.get(user)
    valid = parse_profile(current, "store") if current else None
    merged = merge_profiles(valid.model_dump(exclude_defaults=True) if valid else None, learned)
    if merged and merged != current and parse_profile(merged, "dialogue") is not None:
        await store.put(user, merged)
        return merged
    return current


class ProfileKeeper:
    """The pipeline's side of the store: look a profile up before the draft (bounded wait, fails
    open) and learn from the dialogue after the reply, as a background task.

        keeper = ProfileKeeper(open_store())
        profile = await keeper.lookup("u-42", request_profile)
        keeper.remember_later("u-42", messages)   # returns at once
    """

    def __init__(self, store: PersonaStore, timeout_s: float = 1.0):
        self.store = store
        self.timeout_s = timeout_s
        self.pending: set[asyncio.Task] = set()
        self.errors: list[str] = []

    async def lookup(self, user: str | None, given: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str]:
        """(profile, note): the stored profile with the request's on top; note says what failed."""
        if not user:
            return given, ""
        try:
            stored = await asyncio.wait_for(self.store.get(user), self.timeout_s)
        except Exception as e:  # fail open: the turn goes on with what the request carried
            return given, f"persona store: {type(e).__name__}: {e!s:.80}"
        valid = parse_profile(stored, "store") if stored else None
        return merge_profiles(valid.model_dump(exclude_defaults=True) if valid else None, given), ""

    def remember_later(self, user: str | None, messages: list[Any]) -> asyncio.Task | None:
        learned = extract_profile(messages) if user else None
        if not learned:
            return None
        task = asyncio.create_task(self._remember(user, messages, learned))
        self.pending.add(task)  # held so it is not collected mid-flight
        task.add_done_callback(self.pending.discard)
        return task

    async def _remember(self, user: str, messages: list[Any], learned: dict[str, Any]) -> None:
        try:
            await remember(self.store, user, messages, learned)
        except Exception as e:  # off the critical path: recorded, never raised into a reply
            self.errors.append(f"{type(e).__name__}: {e!s:.120}")

    async def drain(self) -> None:
        """Wait for profile updates in flight (tests, shutdown)."""
        while self.pending:
            await asyncio.gather(*list(self.pending), return_exceptions=True)
