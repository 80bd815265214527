"""Operator endpoints over persona profiles: read and delete what rein stored about a user of a
tenant (the API key's name; ``default`` when the server checks no keys, and when omitted).

    curl -H 'x-rein-admin-key: $REIN_ADMIN_KEY' 'http://127.0.0.1:8080/v1/rein/profiles/u-42?tenant=team-a'
    curl -X DELETE -H 'x-rein-admin-key: $REIN_ADMIN_KEY' 'http://127.0.0.1:8080/v1/rein/profiles/u-42?tenant=team-a'

The key goes in ``x-rein-admin-key`` (``Authorization: Bearer`` also works when the proxy does not
check client API keys, which would claim that header). Without the operator's key: 401.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any, Awaitable, Callable

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from middleware.proxy.errors import error_response
from refiners.store import DEFAULT_TENANT

log = logging.getLogger("rein.proxy")

router = APIRouter(prefix="/v1/rein/profiles", tags=["rein"])


def _denied(request: Request) -> Response | None:
    expected = getattr(request.app.state.settings, "admin_key", None)
    presented = request.headers.get("x-rein-admin-key")
    if presented is None:
        bearer = request.headers.get("authorization") or ""
        presented = bearer[7:].strip() if bearer[:7].lower() == "bearer " else None
    if not expected:
        return error_response(401, "profile endpoints need the operator's admin key, and none is configured "
                                   "(set REIN_ADMIN_KEY)", "admin_key_not_configured", headers={"www-authenticate": "Bearer"})
    # Digests of equal length: comparing the raw strings would return early on a length mismatch.
    if not presented or not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(),
                                                hashlib.sha256(expected.encode()).digest()):
        return error_response(401, "missing or invalid admin key: send 'x-rein-admin-key: <key>'",
                              "invalid_admin_key", headers={"www-authenticate": "Bearer"})
    if getattr(request.app.state.engine, "personas", None) is None:
        return error_response(404, "this server keeps no persona profiles", "persona_store_disabled")
    return None


def _bad_id(user: str, tenant: str) -> Response | None:
    if not user or len(user) > 256:
        return error_response(400, "a user id is 1 to 256 characters", "invalid_user", "user")
    if not tenant or len(tenant) > 256:
        return error_response(400, "a tenant is 1 to 256 characters", "invalid_tenant", "tenant")
    return None


async def _ask_store(request: Request, user: str, tenant: str, ask: Callable[[Any], Awaitable[Any]]) -> Any:
    """What ``ask`` gets from the persona store, or the response that refuses or reports its failure."""
    if (refused := _denied(request) or _bad_id(user, tenant)) is not None:
        return refused
    try:
        return await ask(request.app.state.engine.personas)
    except Exception:
        log.exception("rein: the persona store failed")  # the operator reads why; the caller, what
        return error_response(502, "persona store failed", "persona_store_error")


@router.get("/{user}")
async def read_profile(user: str, request: Request, tenant: str = DEFAULT_TENANT) -> Response:
    profile = await _ask_store(request, user, tenant, lambda store: store.get(user, tenant))
    if isinstance(profile, Response):
        return profile
    if profile is None:
        return error_response(404, f"no profile stored for user {user!r} of tenant {tenant!r}", "profile_not_found", "user")
    return JSONResponse({"object": "rein.profile", "tenant": tenant, "user": user, "profile": profile})


@router.delete("/{user}")
async def delete_profile(user: str, request: Request, tenant: str = DEFAULT_TENANT) -> Response:
    deleted = await _ask_store(request, user, tenant, lambda store: store.delete(user, tenant))
    if isinstance(deleted, Response):
        return deleted
    if not deleted:
        return error_response(404, f"no profile stored for user {user!r} of tenant {tenant!r}", "profile_not_found", "user")
    return JSONResponse({"object": "rein.profile.deleted", "tenant": tenant, "user": user, "deleted": True})
