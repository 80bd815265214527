"""Run the OpenAI-compatible proxy."""
from __future__ import annotations

import argparse
import os
import sys

from middleware.config import Settings, SettingsError
from middleware.redact import masked
from policies.loader import PolicyError, shipped


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (REIN_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (REIN_PORT, default 8080)")
    p.add_argument("--upstream", help="http(s)://host/v1, a litellm model string, or omit for the embedded model (REIN_UPSTREAM)")
    p.add_argument("--middleware-model",
                   help="model for rein's own calls: a URL, a litellm model, or 'upstream' to reuse the upstream on "
                        "purpose (REIN_MIDDLEWARE_MODEL; unset: rein's model stages do not run, the rules do)")
    p.add_argument("--policy", help=f"a built-in policy ({', '.join(shipped())}) or a YAML path "
                                    "(REIN_POLICY, default 'default')")
    p.add_argument("--allow-policy-header", action="store_true", default=None,
                   help="let clients choose a policy per request with x-rein-policy")
    p.add_argument("--upstream-protocol", choices=["chat", "responses", "messages"],
                   help="what the upstream URL also speaks: under passthrough, /v1/responses or /v1/messages relay as "
                        "bytes (REIN_UPSTREAM_PROTOCOL, default chat)")
    p.add_argument("--response-db", help="SQLite file or postgresql:// DSN to keep Responses for previous_response_id "
                                         "and GET/DELETE /v1/responses/{id} (REIN_RESPONSE_DB; unset: stateless)")
    p.add_argument("--shadow", action="store_true", default=None,
                   help="shadow mode: every stage runs and nothing changes; what rein would have done goes to "
                        "x-rein-would-* headers and the decision log (REIN_SHADOW=1)")
    p.add_argument("--decision-db", help="the decision log, reviewed under /rein/: SQLite file or postgresql:// DSN "
                                         "(REIN_DECISION_DB; under --shadow default ./rein-decisions.db)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug", "trace"],
                   help="the server's log level (default: info)")
    p.add_argument("--incident-webhook", help="http(s) URL that gets a JSON POST for each failure the agent reports "
                                              "(report_internal_error) (REIN_INCIDENT_WEBHOOK; unset: log line, "
                                              "x-rein-incident header and /metrics only)")
    ops = p.add_argument_group("serving (keys: REIN_API_KEYS=team-a:key1,team-b:key2, each named for its tenant — never "
                                 "on the command line, where ps shows them)")
    ops.add_argument("--workers", type=int, help="worker processes (REIN_WORKERS, default 1)")
    ops.add_argument("--upstream-timeout", type=float, help="seconds per upstream call (REIN_UPSTREAM_TIMEOUT_S, 120)")
    ops.add_argument("--timeout-keep-alive", type=float, help="idle keep-alive seconds (REIN_TIMEOUT_KEEP_ALIVE_S, 5)")
    ops.add_argument("--timeout-graceful-shutdown", type=float,
                     help="seconds the server waits for open connections at shutdown (REIN_TIMEOUT_GRACEFUL_SHUTDOWN_S, 30)")
    ops.add_argument("--drain-timeout", type=float,
                     help="on SIGTERM, seconds to answer 503 to new requests while in-flight ones finish (REIN_DRAIN_TIMEOUT_S, 30)")
    ops.add_argument("--header-timeout", type=float,
                     help="seconds a client has to send a request's headers (REIN_HEADER_TIMEOUT_S, 10)")
    ops.add_argument("--max-idle-connections", type=int,
                     help="connections per worker waiting for a request before the longest waiting is closed "
                          "(REIN_MAX_IDLE_CONNECTIONS, default half the open-file limit, at most 1000)")
    ops.add_argument("--limit-concurrency", type=int, help="connections per worker before 503 (REIN_LIMIT_CONCURRENCY)")
    ops.add_argument("--max-body-bytes", type=int, help="request size limit, 413 past it (REIN_MAX_BODY_BYTES, 8 MiB)")
    ops.add_argument("--rate-limit-rpm", type=float, help="requests per minute per API key, per worker (REIN_RATE_LIMIT_RPM)")
    ops.add_argument("--rate-limit-burst", type=int, help="bucket size for the rate limit (REIN_RATE_LIMIT_BURST)")
    ops.add_argument("--policy-watch", type=float,
                     help="reload the --policy file when its mtime changes, checked every N s (REIN_POLICY_WATCH_S); SIGHUP always reloads it")


def guard_connections(settings: Settings) -> str:
    """Configure this process's slow-header guard; returns its import path for uvicorn's ``http``."""
    import resource

    from middleware.proxy.ops.conn_guard import IMPORT_PATH, GuardedHTTP

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    fallback = min(1000, soft // 2) if soft != resource.RLIM_INFINITY else 1000
    GuardedHTTP.configure(settings.header_timeout_s, settings.max_idle_connections or max(1, fallback))
    return IMPORT_PATH


def app_factory():
    """Module-level factory for uvicorn's workers: each process builds its own engine from the
    settings the parent resolved (``REIN_SETTINGS_JSON``), or from ``REIN_*`` variables."""
    from middleware.proxy import create_app
    from middleware.proxy.ops import rules_only
    from middleware.proxy.ops.metrics import setup_tracing

    raw = os.environ.get("REIN_SETTINGS_JSON")
    settings = Settings.model_validate_json(raw) if raw else Settings.from_env()
    guard_connections(settings)
    setup_tracing()
    app = create_app(settings, serving=True)
    return rules_only.wrap(app, app.state.engine)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from middleware.engine import Engine
    from middleware.proxy import create_app
    from middleware.proxy.ops import rules_only

    try:  # a bad setting or policy stops start-up here, with one line per problem and no traceback
        settings = Settings.from_env(host=args.host, port=args.port, upstream=args.upstream,
                                     middleware_model=args.middleware_model, policy=args.policy,
                                     allow_policy_header=args.allow_policy_header, workers=args.workers,
                                     upstream_timeout_s=args.upstream_timeout,
                                     timeout_keep_alive_s=args.timeout_keep_alive,
                                     timeout_graceful_shutdown_s=args.timeout_graceful_shutdown,
                                     drain_timeout_s=args.drain_timeout, limit_concurrency=args.limit_concurrency,
                                     max_body_bytes=args.max_body_bytes, rate_limit_rpm=args.rate_limit_rpm,
                                     rate_limit_burst=args.rate_limit_burst, policy_watch_s=args.policy_watch,
                                     upstream_protocol=args.upstream_protocol, response_db=args.response_db,
                                     shadow=args.shadow, decision_db=args.decision_db,
                                     header_timeout_s=args.header_timeout,
                                     max_idle_connections=args.max_idle_connections,
                                     incident_webhook=args.incident_webhook)
        engine = Engine.from_settings(settings)
    except (SettingsError, PolicyError) as e:
        print("\n".join(f"rein: {line}" for line in str(e).splitlines()), file=sys.stderr)
        return 2
    where = masked(settings.upstream) if settings.upstream else "the embedded model (smollm2-135m-instruct)"
    print(f"rein: policy {engine.default_policy.name!r} in front of {where} on http://{settings.host}:{settings.port}/v1"
          f" ({settings.workers} worker{'s' if settings.workers > 1 else ''})", file=sys.stderr)
    if engine.decisions is not None:  # a DSN may carry a password: it is not printed
        store = engine.decisions.store
        print(f"rein: {'shadow mode, nothing is changed; ' if engine.shadow else ''}decisions logged to "
              f"{'PostgreSQL' if store.postgres else store.path}, reviewed at http://{settings.host}:{settings.port}"
              f"/rein/{'' if settings.admin_key else ' once REIN_ADMIN_KEY is set'}", file=sys.stderr)
    if why := engine.rules_only():
        print(f"rein: {why} (--middleware-model MODEL, or 'upstream' to reuse the upstream); "
              f"answers say so in x-rein-model-stages", file=sys.stderr)
    limits = dict(host=settings.host, port=settings.port, log_level=args.log_level, access_log=False,
                  # rein answers past --limit-concurrency itself (503 in OpenAI's shape); uvicorn's own
                  # limit, on connections, is only a backstop against connection floods.
                  limit_concurrency=2 * settings.limit_concurrency if settings.limit_concurrency else None,
                  timeout_keep_alive=int(settings.timeout_keep_alive_s),
                  timeout_graceful_shutdown=int(settings.timeout_graceful_shutdown_s),
                  http=guard_connections(settings))
    if settings.workers > 1:  # workers are separate processes: they import the factory and rebuild
        os.environ["REIN_SETTINGS_JSON"] = settings.model_dump_json()
        uvicorn.run("middleware.commands.serve:app_factory", factory=True, workers=settings.workers, **limits)
        return 0
    from middleware.proxy.ops.metrics import setup_tracing

    setup_tracing()
    uvicorn.run(rules_only.wrap(create_app(settings, engine, serving=True), engine), **limits)
    return 0
