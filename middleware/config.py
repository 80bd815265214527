"""Server and engine settings: CLI flags, with ``REIN_*`` environment variables as defaults."""
from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from middleware.model_spec import check_model_spec


def _env(name: str, default: Any = None) -> Any:
    return os.environ.get(f"REIN_{name}", default)


class SettingsError(ValueError):
    """A setting that cannot work; each line names it as the operator wrote it (flag or variable)."""


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    upstream: str | None = Field(None, description="http(s)://host/v1, a litellm model string, or none for the embedded model")
    upstream_api_key: str | None = None
    middleware_model: str | None = Field(None, description="Model for rein's own calls (a URL, a litellm model, or "
                                         "'upstream' to reuse the upstream); unset: rein's model stages do not run")
    middleware_api_key: str | None = None
    policy: str = "default"
    allow_policy_header: bool = False
    max_body_bytes: int = Field(8 * 1024 * 1024, gt=0)
    upstream_timeout_s: float = Field(120.0, gt=0)
    # Deadlines (issue 14): a stream that trickles forever is still cut, with an SSE error event.
    request_deadline_s: float = Field(600.0, gt=0, description="longest a request may take, streams included")
    stream_idle_timeout_s: float | None = Field(None, gt=0, description="longest silence inside an upstream "
                                                "stream; default: upstream_timeout_s")
    ready_check_upstream: bool = Field(True, description="/readyz probes the upstream (cached); false: no probe")
    ready_probe_ttl_s: float = Field(5.0, ge=0, description="how long a readiness probe's answer is reused")
    # Serving and operations (middleware/proxy/ops/, `rein serve`).
    api_keys: list[str] = Field(default_factory=list, description="inbound keys clients must send; empty: no check")
    rate_limit_rpm: float | None = Field(None, gt=0, description="requests per minute per key, per worker")
    rate_limit_burst: int | None = Field(None, gt=0)
    metrics: bool = True
    workers: int = Field(1, ge=1)
    limit_concurrency: int | None = Field(None, gt=0, description="past this many connections, 503")
    timeout_keep_alive_s: float = Field(5.0, ge=0)
    timeout_graceful_shutdown_s: float = Field(30.0, ge=0)
    # Slow clients (middleware/proxy/ops/conn_guard.py): headers trickled a byte at a time held connections open.
    header_timeout_s: float = Field(10.0, gt=0, description="a request's headers must arrive within this many "
                                    "seconds of the connection opening or the previous response ending")
    max_idle_connections: int | None = Field(None, gt=0, description="connections per worker that may wait for a "
                                             "request; past it the longest waiting is closed; unset: half the "
                                             "process's open-file limit, at most 1000")
    drain_timeout_s: float = Field(30.0, ge=0)
    policy_watch_s: float = Field(0.0, ge=0, description="check the policy file's mtime this often; 0: SIGHUP only")
    # Persona profiles (refiners/store.py) and the admin endpoints over them.
    persona_db: str | None = Field(None, description="postgresql://… DSN or SQLite file; default ./rein-personas.db")
    admin_key: str | None = Field(None, description="operator key for /v1/rein/profiles; unset: those endpoints refuse")
    persona_ttl_days: float | None = Field(None, gt=0, description="profiles not updated for this long are "
                                           "neither read nor kept; unset: kept until deleted")
    # The other wire formats (middleware/proxy/routes/responses.py, messages.py).
    upstream_protocol: Literal["chat", "responses", "messages"] = Field(
        "chat", description="what the upstream URL speaks besides chat completions: under passthrough, requests "
                            "in that protocol relay as bytes")
    response_db: str | None = Field(None, description="postgresql://… DSN or SQLite file for stored Responses; "
                                                      "unset: stateless, previous_response_id is refused")
    incident_webhook: str | None = Field(None, pattern=r"^https?://\S+$", description=(
        "http(s) URL that gets a JSON POST for each failure the agent reports (report_internal_error); "
        "unset: the warning log line, the x-rein-incident header and /metrics only"))

    # Shadow mode and the decision log (issue 22: middleware/decisions).
    shadow: bool = Field(False, description="every policy runs in shadow mode: every stage runs and nothing changes")
    decision_db: str | None = Field(None, description="SQLite file or postgresql:// DSN of the decision log; "
                                    "unset: no log (under shadow mode: ./rein-decisions.db)")
    decision_retention_days: float | None = Field(None, gt=0, description="decisions older than this are deleted")
    decision_sample: float = Field(0.0, ge=0, le=1, description="share of requests where no rule fired that are "
                                   "logged too")

    @field_validator("upstream", "middleware_model")
    @classmethod
    def _model_spec(cls, value: str | None, info: Any) -> str | None:
        # A typo here used to start the server and fail every request with a 400 blaming the client.
        return check_model_spec(value, allow_upstream=info.field_name == "middleware_model")

    @classmethod
    def from_env(cls, **overrides: Any) -> "Settings":
        """Settings from ``REIN_*`` variables, with ``overrides`` (CLI flags) on top; raises
        SettingsError naming each bad setting as the operator wrote it."""
        values: dict[str, Any] = {
            "host": _env("HOST"), "port": _env("PORT"), "upstream": _env("UPSTREAM"),
            "upstream_api_key": _env("UPSTREAM_API_KEY"), "middleware_model": _env("MIDDLEWARE_MODEL"),
            "middleware_api_key": _env("MIDDLEWARE_API_KEY"), "policy": _env("POLICY"),
            "allow_policy_header": (_env("ALLOW_POLICY_HEADER", "") or "").lower() in ("1", "true", "yes") or None,
            "max_body_bytes": _env("MAX_BODY_BYTES"), "upstream_timeout_s": _env("UPSTREAM_TIMEOUT_S"),
            "api_keys": [k.strip() for k in (_env("API_KEYS") or "").split(",") if k.strip()] or None,
            "rate_limit_rpm": _env("RATE_LIMIT_RPM"), "rate_limit_burst": _env("RATE_LIMIT_BURST"),
            "metrics": (_env("METRICS") or "").lower() not in ("0", "false", "no") if _env("METRICS") else None,
            "workers": _env("WORKERS"), "limit_concurrency": _env("LIMIT_CONCURRENCY"),
            "timeout_keep_alive_s": _env("TIMEOUT_KEEP_ALIVE_S"),
            "timeout_graceful_shutdown_s": _env("TIMEOUT_GRACEFUL_SHUTDOWN_S"),
            "header_timeout_s": _env("HEADER_TIMEOUT_S"), "max_idle_connections": _env("MAX_IDLE_CONNECTIONS"),
            "drain_timeout_s": _env("DRAIN_TIMEOUT_S"), "policy_watch_s": _env("POLICY_WATCH_S"),
            "persona_db": _env("PERSONA_DB"), "admin_key": _env("ADMIN_KEY"),
            "request_deadline_s": _env("REQUEST_DEADLINE_S"), "stream_idle_timeout_s": _env("STREAM_IDLE_TIMEOUT_S"),
            "ready_check_upstream": (_env("READY_CHECK_UPSTREAM") or "").lower() not in ("0", "false", "no")
                                    if _env("READY_CHECK_UPSTREAM") else None,
            "ready_probe_ttl_s": _env("READY_PROBE_TTL_S"), "persona_ttl_days": _env("PERSONA_TTL_DAYS"),
            "upstream_protocol": _env("UPSTREAM_PROTOCOL"), "response_db": _env("RESPONSE_DB"),
            "shadow": (_env("SHADOW") or "").lower() in ("1", "true", "yes") or None,
            "decision_db": _env("DECISION_DB"), "decision_retention_days": _env("DECISION_RETENTION_DAYS"),
            "decision_sample": _env("DECISION_SAMPLE"),
            "incident_webhook": _env("INCIDENT_WEBHOOK"),
        }
        given = {k: v for k, v in overrides.items() if v is not None}
        values.update(given)
        try:
            return cls(**{k: v for k, v in values.items() if v is not None})
        except ValidationError as e:
            raise SettingsError("\n".join(_named(err, given) for err in e.errors())) from None


def _named(err: Any, flags: dict[str, Any]) -> str:
    """One pydantic error as one line: ``REIN_PORT='abc': ...`` or ``--workers 0: ...``."""
    field = str(err["loc"][0]) if err["loc"] else ""
    if field in flags:
        where = f"--{field.removesuffix('_s').replace('_', '-')} {flags[field]}"
    else:
        where = f"REIN_{field.upper()}={os.environ.get('REIN_' + field.upper(), '')!r}"
    return f"{where}: {err['msg'].removeprefix('Value error, ')}"
