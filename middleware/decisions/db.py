"""The decision log's database: one DB-API connection per thread for SQLite (short transactions,
WAL, the file 0600), one shared connection under a lock for PostgreSQL (psycopg 3, autocommit,
reconnected when it drops). ``DecisionStore`` (store.py) asks it in SQL.

    db = DecisionDB("./rein-decisions.db")          # or postgresql://...
    rows = db._rows("SELECT * FROM rein_decisions WHERE id = ?", ("d1",))
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rein_decisions (id TEXT PRIMARY KEY, at {real} NOT NULL, tenant TEXT NOT NULL, "
    "conversation TEXT NOT NULL, turn INTEGER NOT NULL, request_id TEXT NOT NULL, policy TEXT NOT NULL, "
    "rule TEXT NOT NULL, mode TEXT NOT NULL, stage TEXT NOT NULL, evidence TEXT, evidence_at TEXT, plan TEXT, "
    "diff TEXT, rein_ms {real}, next TEXT, verdict TEXT, note TEXT, marked_at {real})",
    "CREATE INDEX IF NOT EXISTS rein_decisions_at ON rein_decisions (at)",
    "CREATE INDEX IF NOT EXISTS rein_decisions_rule ON rein_decisions (rule, at)",
    "CREATE INDEX IF NOT EXISTS rein_decisions_conversation ON rein_decisions (conversation, turn)",
    "CREATE TABLE IF NOT EXISTS rein_decision_dialogues (request_id TEXT PRIMARY KEY, at {real} NOT NULL, "
    "messages TEXT NOT NULL, tools TEXT, reply TEXT)",
    "CREATE TABLE IF NOT EXISTS rein_decision_requests (day TEXT NOT NULL, tenant TEXT NOT NULL, "
    "policy TEXT NOT NULL, requests INTEGER NOT NULL, PRIMARY KEY (day, tenant, policy))",
)


class DecisionDB:
    def __init__(self, target: str):
        self.target = target
        self.postgres = target.startswith(("postgresql://", "postgres://"))
        self.path = None if self.postgres else target.removeprefix("sqlite:///")
        self.param = "%s" if self.postgres else "?"
        self._local = threading.local()
        self._lock = threading.Lock()
        self._pg = None
        self._ready = False

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self.path != ":memory:" and not os.path.exists(self.path):
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))  # evidence may quote users
            conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            if self.path != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        if not self._ready:
            self._create(conn.execute)
            conn.commit()
        return conn

    def _create(self, execute) -> None:
        real = "DOUBLE PRECISION" if self.postgres else "REAL"
        for statement in _SCHEMA:
            execute(statement.format(real=real))
        self._ready = True

    def _run(self, work):
        """``work(execute)`` in one transaction; returns what it returns."""
        if not self.postgres:
            conn = self._sqlite()
            with conn:
                return work(conn.execute)
        import psycopg

        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._pg is None or self._pg.closed:
                        self._pg = psycopg.connect(self.target, autocommit=True, connect_timeout=5)
                        self._ready = False
                    if not self._ready:
                        self._create(self._pg.execute)
                    with self._pg.transaction():
                        return work(self._pg.execute)
                except psycopg.OperationalError:
                    self._pg = None
                    if attempt == 2:
                        raise

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self.param) if self.postgres else sql

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    def _rows(self, sql: str, args: list[Any] | tuple = ()) -> list[dict[str, Any]]:
        def work(execute):
            cur = execute(self._sql(sql), tuple(args))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]
        return self._run(work)
