"""Stored Responses for ``previous_response_id`` and ``GET``/``DELETE /v1/responses/{id}``.

Built on the tenant-store base the persona profiles use (``policies.tenant_store``): a SQLite file
by default, PostgreSQL for replicas, every row keyed by tenant (the inbound key's id) and response
id, so one tenant can neither read nor delete another's responses; arguments in the one order of
that base (id, record, then tenant). With no store configured the proxy stays stateless and
``previous_response_id`` is refused.

    store = open_response_store("./rein-responses.db")
    await store.put("resp_1", {"response": {...}, "context": [...]}, tenant="team-a")
    await store.get("resp_1", tenant="team-a")     # the record; None for another tenant
"""
from __future__ import annotations

from typing import Any, Protocol

from policies.tenant_store import DEFAULT_TENANT, PostgresTenantStore, SQLiteTenantStore, Table

_RESPONSES = Table("rein_responses", key="id", value="record", time="created_at")


class ResponseStore(Protocol):
    async def get(self, resp_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any] | None: ...

    async def put(self, resp_id: str, record: dict[str, Any], tenant: str = DEFAULT_TENANT) -> None: ...

    async def delete(self, resp_id: str, tenant: str = DEFAULT_TENANT) -> bool: ...


class SQLiteResponses(SQLiteTenantStore):
    """One file, readable by its owner only (0600: it holds the full input text, like the persona store)."""
    TABLE = _RESPONSES


class PostgresResponses(PostgresTenantStore):
    TABLE = _RESPONSES


def open_response_store(target: str | None) -> ResponseStore | None:
    """``postgresql://…`` → PostgreSQL, a path or ``sqlite:///path`` → SQLite, None → no store."""
    if not target:
        return None
    if target.startswith(("postgresql://", "postgres://")):
        return PostgresResponses(target)
    return SQLiteResponses(target[len("sqlite:///"):] if target.startswith("sqlite:///") else target)
