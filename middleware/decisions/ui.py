"""The page to review decisions: ``rein ui``, and the same pages under ``/rein/`` on the proxy.

- ``GET /rein/`` — decisions, newest first, filtered by rule (an id or a glob), mode, tenant, time
  and verdict; above them, per rule: times fired, marked wrong, share of requests;
- ``GET /rein/decisions/{id}`` — one decision: the dialogue around it with the evidence marked,
  the plan or the diff, what the agent did next, and a form to mark it right or wrong with a note;
- ``POST /rein/decisions/{id}/mark`` — that form (``verdict``, ``note``, ``token``).

Server-rendered (Jinja2), one small script, no build step. On the proxy the pages take the
operator's admin key (``REIN_ADMIN_KEY``): as ``x-rein-admin-key``, ``Authorization: Bearer``, or the
password of HTTP basic auth, which a browser asks for. ``rein ui`` on 127.0.0.1 needs none unless
given one.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import time
from pathlib import Path
from typing import Any

import jinja2
import orjson
from fastapi import APIRouter, FastAPI, Request
from markupsafe import Markup, escape
from starlette.responses import HTMLResponse, RedirectResponse, Response

from middleware.decisions.describe import evidence_pieces
from middleware.decisions.store import DecisionStore, Filters

HERE = Path(__file__).parent
PAGE_SIZE = 50
SPANS = {"15m": 900, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
CONTEXT = 8  # messages shown before the decision's turn

router = APIRouter(prefix="/rein", tags=["rein"], include_in_schema=False)
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True)


def _marked(text: str, pieces: list[str]) -> Markup:
    """``text`` escaped, with each evidence piece wrapped in <mark>."""
    out = str(escape(text or ""))
    for piece in pieces:
        safe = str(escape(piece))
        if safe in out:
            out = out.replace(safe, f"<mark>{safe}</mark>")
    return Markup(out)


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(at))


_env.filters.update(marked=_marked, when=_when, json=lambda v: orjson.dumps(v, option=orjson.OPT_INDENT_2).decode())
_STATIC = {name: (HERE / "static" / name).read_bytes() for name in ("rein.css", "rein.js")}


# ---- access ----------------------------------------------------------------------------
def _admin_key(request: Request) -> str | None:
    return request.app.state.ui_key


def _presented(request: Request) -> str | None:
    if "x-rein-admin-key" in request.headers:
        return request.headers["x-rein-admin-key"]
    auth = request.headers.get("authorization") or ""
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _denied(request: Request) -> Response | None:
    if getattr(request.app.state, "ui_open", False):
        return None
    key = _admin_key(request)
    if not key:
        return HTMLResponse("<h1>401</h1><p>The decision pages need the operator's admin key, and none is "
                            "configured (set REIN_ADMIN_KEY).</p>", 401)
    presented = _presented(request)
    if not presented or not hmac.compare_digest(hashlib.sha256(presented.encode()).digest(),
                                                hashlib.sha256(key.encode()).digest()):
        return HTMLResponse("<h1>401</h1><p>The operator's admin key is needed (the password of this prompt, "
                            "or 'x-rein-admin-key').</p>", 401, headers={"www-authenticate": 'Basic realm="rein"'})
    if _store(request) is None:
        return HTMLResponse("<h1>404</h1><p>This server keeps no decision log (--decision-db).</p>", 404)
    return None


def _store(request: Request) -> DecisionStore | None:
    return request.app.state.decision_store


def _token(request: Request) -> str:
    """The mark form's token: a cross-site form cannot know it (basic auth is resent by browsers)."""
    secret = request.app.state.ui_secret
    return hmac.new(secret.encode(), b"rein-ui-mark", hashlib.sha256).hexdigest()[:32]


# ---- pages -----------------------------------------------------------------------------
def filters_of(params: Any, now: float | None = None) -> Filters:
    since = SPANS.get(params.get("time") or "")
    return Filters(rule=(params.get("rule") or "").strip() or None, mode=params.get("mode") or None,
                   tenant=params.get("tenant") or None, verdict=params.get("verdict") or None,
                   since=(now or time.time()) - since if since else None)


def _list_data(store: DecisionStore, filters: Filters, page: int) -> dict[str, Any]:
    return {"rows": store.page(filters, PAGE_SIZE, (page - 1) * PAGE_SIZE), "total": store.count(filters),
            "per_rule": store.per_rule(filters), "requests": store.requests(filters), "choices": store.choices()}


@router.get("/", response_class=HTMLResponse)
async def decisions_page(request: Request) -> Response:
    if (refused := _denied(request)) is not None:
        return refused
    started = time.perf_counter()
    params = request.query_params
    filters = filters_of(params)
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    data = await asyncio.to_thread(_list_data, _store(request), filters, page)
    ms = (time.perf_counter() - started) * 1000
    html = _env.get_template("list.html").render(
        **data, page=page, pages=max(1, -(-data["total"] // PAGE_SIZE)), params=dict(params), spans=list(SPANS),
        modes=["act", "flag", "shadow"], ms=ms)
    return HTMLResponse(html, headers={"server-timing": f"rein;dur={ms:.1f}"})


def _detail_data(store: DecisionStore, decision_id: str) -> dict[str, Any] | None:
    decision = store.get(decision_id)
    if decision is None:
        return None
    dialogue = store.dialogue(decision["request_id"])
    for key in ("evidence_at", "diff", "next"):
        decision[key] = orjson.loads(decision[key]) if decision.get(key) else None
    messages = dialogue["messages"] if dialogue else []
    first = max(0, len(messages) - CONTEXT)
    return {"d": decision, "dialogue": dialogue, "shown": list(enumerate(messages))[first:], "skipped": first,
            "siblings": [s for s in store.siblings(decision["request_id"]) if s["id"] != decision_id],
            "pieces": evidence_pieces(decision.get("evidence") or "")}


@router.get("/decisions/{decision_id}", response_class=HTMLResponse)
async def decision_page(decision_id: str, request: Request) -> Response:
    if (refused := _denied(request)) is not None:
        return refused
    data = await asyncio.to_thread(_detail_data, _store(request), decision_id)
    if data is None:
        return HTMLResponse(f"<h1>404</h1><p>No decision {escape(decision_id)}.</p>", 404)
    return HTMLResponse(_env.get_template("decision.html").render(**data, token=_token(request),
                                                                  saved=request.query_params.get("saved")))


@router.post("/decisions/{decision_id}/mark")
async def mark(decision_id: str, request: Request) -> Response:
    if (refused := _denied(request)) is not None:
        return refused
    form = await request.form()
    if not hmac.compare_digest(str(form.get("token") or ""), _token(request)):
        return HTMLResponse("<h1>403</h1><p>The form is stale or not from this page: reload it.</p>", 403)
    verdict = form.get("verdict") or None
    if verdict not in ("right", "wrong", None):
        return HTMLResponse("<h1>400</h1><p>verdict is right or wrong</p>", 400)
    found = await asyncio.to_thread(_store(request).mark, decision_id, verdict, str(form.get("note") or ""))
    if not found:
        return HTMLResponse(f"<h1>404</h1><p>No decision {escape(decision_id)}.</p>", 404)
    return RedirectResponse(f"{request.scope.get('root_path', '')}/rein/decisions/{decision_id}?saved=1", 303)


@router.get("/static/{name}")
async def static(name: str) -> Response:
    if name not in _STATIC:
        return Response(status_code=404)
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(_STATIC[name], media_type=kind, headers={"cache-control": "max-age=3600"})


def install(app: FastAPI, store: DecisionStore | None, admin_key: str | None, open_access: bool = False) -> None:
    """Serve the pages on ``app`` (the proxy's, or ``rein ui``'s own)."""
    app.state.decision_store = store
    app.state.ui_key = admin_key
    app.state.ui_open = open_access
    # A key-derived secret: every worker of one server accepts the forms any of them rendered.
    app.state.ui_secret = hashlib.sha256(f"rein-ui\0{admin_key}".encode()).hexdigest() if admin_key \
        else secrets.token_hex(16)
    app.include_router(router)


def create_ui_app(store: DecisionStore, admin_key: str | None = None) -> FastAPI:
    """``rein ui``: the pages alone, over a decision store."""
    app = FastAPI(title="rein decisions", docs_url=None, redoc_url=None, openapi_url=None)
    install(app, store, admin_key, open_access=not admin_key)

    @app.get("/")
    async def home() -> Response:
        return RedirectResponse("/rein/", 307)
    return app
