"""Where decisions are kept: a SQLite file by default, PostgreSQL for replicas (the same two
backends, file mode and DSN forms as persona profiles and stored responses: refiners/store.py,
middleware/proxy/response_store.py).

Three tables: ``rein_decisions`` (one row per rule that fired in a request), ``rein_decision_dialogues``
(the request's messages and the reply, only when the operator logs content) and
``rein_decision_requests`` (requests seen per day, tenant and policy: the denominator of "share of
requests"). Every call is synchronous: the log's writer thread and the page's worker threads call it,
never the event loop.

    store = open_decision_store("./rein-decisions.db")      # or postgresql://...; REIN_DECISION_DB
    store.add(rows=[...], dialogues=[...], requests={("2026-12-02", "team-a", "default"): 40})
    store.page(Filters(rule="detect:*", mode="shadow"), limit=50)
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable

from middleware.decisions.db import DecisionDB

DEFAULT_PATH = "./rein-decisions.db"
COLUMNS = ("id", "at", "tenant", "conversation", "turn", "request_id", "policy", "rule", "mode", "stage",
           "evidence", "evidence_at", "plan", "diff", "rein_ms", "next", "verdict", "note", "marked_at")


@dataclass
class Filters:
    """What the page and ``rein decisions list`` filter by; ``rule`` may be a glob (``detect:*``)."""
    rule: str | None = None
    mode: str | None = None
    tenant: str | None = None
    since: float | None = None      # epoch seconds
    until: float | None = None
    verdict: str | None = None      # right | wrong | unmarked

    def where(self, mark: str) -> tuple[str, list[Any]]:
        sql, args = [], []
        if self.rule:
            if any(c in self.rule for c in "*?"):
                sql.append(f"rule LIKE {mark}")
                args.append(self.rule.replace("%", "").replace("_", "\\_").replace("*", "%").replace("?", "_"))
                sql[-1] += " ESCAPE '\\'"
            else:
                sql.append(f"rule = {mark}")
                args.append(self.rule)
        for name in ("mode", "tenant"):
            if getattr(self, name):
                sql.append(f"{name} = {mark}")
                args.append(getattr(self, name))
        if self.since is not None:
            sql.append(f"at >= {mark}")
            args.append(self.since)
        if self.until is not None:
            sql.append(f"at < {mark}")
            args.append(self.until)
        if self.verdict == "unmarked":
            sql.append("verdict IS NULL")
        elif self.verdict:
            sql.append(f"verdict = {mark}")
            args.append(self.verdict)
        return (" WHERE " + " AND ".join(sql)) if sql else "", args


def day_of(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class DecisionStore(DecisionDB):
    """The decision log's writes (its writer thread) and reads (the page, the CLI), over ``DecisionDB``."""

    # ---- writes (the log's writer thread) ----------------------------------------------
    def add(self, rows: Iterable[dict[str, Any]] = (), dialogues: Iterable[dict[str, Any]] = (),
            requests: dict[tuple[str, str, str], int] | None = None,
            fills: Iterable[tuple[str, str, int, str]] = ()) -> None:
        """Insert decision rows and dialogues, add to the request counts, and fill in "what the
        agent did next" (tenant, conversation, turn: rows of that conversation before it, next)."""
        rows, dialogues, fills = list(rows), list(dialogues), list(fills)
        cols = ", ".join(COLUMNS)
        insert = self._sql(f"INSERT INTO rein_decisions ({cols}) VALUES ({', '.join('?' * len(COLUMNS))})")
        dialogue = self._sql("INSERT INTO rein_decision_dialogues (request_id, at, messages, tools, reply) "
                             "VALUES (?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING")
        count = self._sql("INSERT INTO rein_decision_requests (day, tenant, policy, requests) VALUES (?, ?, ?, ?) "
                          "ON CONFLICT (day, tenant, policy) DO UPDATE SET requests = "
                          "rein_decision_requests.requests + excluded.requests")
        fill = self._sql("UPDATE rein_decisions SET next = ? WHERE tenant = ? AND conversation = ? AND turn < ? "
                         "AND next IS NULL")

        def work(execute):
            for row in rows:
                execute(insert, tuple(row.get(c) for c in COLUMNS))
            for d in dialogues:
                execute(dialogue, (d["request_id"], d["at"], d["messages"], d.get("tools"), d.get("reply")))
            for (day, tenant, policy), n in (requests or {}).items():
                execute(count, (day, tenant, policy, n))
            for tenant, conversation, turn, nxt in fills:
                execute(fill, (nxt, tenant, conversation, turn))
        self._run(work)

    def mark(self, decision_id: str, verdict: str | None, note: str = "") -> bool:
        """Mark a decision right or wrong (None clears the mark), with a note."""
        if verdict not in ("right", "wrong", None):
            raise ValueError("a verdict is 'right' or 'wrong'")
        sql = self._sql("UPDATE rein_decisions SET verdict = ?, note = ?, marked_at = ? WHERE id = ?")
        return bool(self._run(lambda ex: ex(sql, (verdict, note[:2000], time.time() if verdict else None,
                                                   decision_id)).rowcount))

    def purge(self, days: float) -> int:
        """Delete decisions, dialogues and counts older than ``days``; how many decisions went."""
        cutoff = time.time() - days * 86400

        def work(execute):
            n = execute(self._sql("DELETE FROM rein_decisions WHERE at < ?"), (cutoff,)).rowcount
            execute(self._sql("DELETE FROM rein_decision_dialogues WHERE at < ?"), (cutoff,))
            execute(self._sql("DELETE FROM rein_decision_requests WHERE day < ?"), (day_of(cutoff),))
            return n
        return self._run(work)

    # ---- reads (the page, the CLI) -----------------------------------------------------
    def page(self, filters: Filters, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
        where, args = filters.where(self.param)
        return self._rows(f"SELECT * FROM rein_decisions{where} ORDER BY at DESC, id LIMIT {int(limit)} "
                          f"OFFSET {int(offset)}", args)

    def count(self, filters: Filters) -> int:
        where, args = filters.where(self.param)
        return self._rows(f"SELECT COUNT(*) AS n FROM rein_decisions{where}", args)[0]["n"]

    def per_rule(self, filters: Filters) -> list[dict[str, Any]]:
        """Per rule: times fired, marked wrong, marked right, and the share of requests it fired in."""
        where, args = filters.where(self.param)
        rows = self._rows(
            "SELECT rule, COUNT(*) AS fired, COUNT(DISTINCT request_id) AS requests, "
            "SUM(CASE WHEN verdict = 'wrong' THEN 1 ELSE 0 END) AS wrong, "
            "SUM(CASE WHEN verdict = 'right' THEN 1 ELSE 0 END) AS marked_right "
            f"FROM rein_decisions{where} GROUP BY rule ORDER BY fired DESC, rule", args)
        total = self.requests(filters)
        for r in rows:
            r["share"] = r["requests"] / total if total else None
        return [r for r in rows if r["rule"] != "none"]

    def requests(self, filters: Filters) -> int:
        sql, args = [], []
        if filters.tenant:
            sql.append(f"tenant = {self.param}")
            args.append(filters.tenant)
        if filters.since is not None:
            sql.append(f"day >= {self.param}")
            args.append(day_of(filters.since))
        if filters.until is not None:
            sql.append(f"day <= {self.param}")
            args.append(day_of(filters.until))
        where = (" WHERE " + " AND ".join(sql)) if sql else ""
        got = self._rows(f"SELECT SUM(requests) AS n FROM rein_decision_requests{where}", args)
        return int(got[0]["n"] or 0)

    def choices(self) -> dict[str, list[str]]:
        """The rules, modes and tenants present (the page's filter menus)."""
        return {c: [r[c] for r in self._rows(f"SELECT DISTINCT {c} FROM rein_decisions ORDER BY {c}")]
                for c in ("rule", "mode", "tenant")}

    def get(self, decision_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM rein_decisions WHERE id = ?", (decision_id,))
        return rows[0] if rows else None

    def siblings(self, request_id: str) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM rein_decisions WHERE request_id = ? ORDER BY stage, rule", (request_id,))

    def dialogue(self, request_id: str) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM rein_decision_dialogues WHERE request_id = ?", (request_id,))
        if not rows:
            return None
        d = rows[0]
        return {"messages": json.loads(d["messages"]), "tools": json.loads(d["tools"]) if d["tools"] else None,
                "reply": json.loads(d["reply"]) if d["reply"] else None}


def open_decision_store(target: str | None = None) -> DecisionStore:
    """``postgresql://…`` → PostgreSQL; a path or ``sqlite:///path`` → SQLite (default
    REIN_DECISION_DB, else ./rein-decisions.db). Nothing is opened until the first call."""
    return DecisionStore(target or os.environ.get("REIN_DECISION_DB") or DEFAULT_PATH)
