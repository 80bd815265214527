"""Run the OpenAI-compatible proxy."""
from __future__ import annotations

import argparse
import sys

from middleware.config import Settings
from policies.loader import PolicyError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", help="bind address (REIN_HOST, default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (REIN_PORT, default 8080)")
    p.add_argument("--upstream", help="http(s)://host/v1, a litellm model string, or omit for the embedded model (REIN_UPSTREAM)")
    p.add_argument("--middleware-model", help="model for rein's own calls (REIN_MIDDLEWARE_MODEL; default: the upstream)")
    p.add_argument("--policy", help="policy name or YAML path (REIN_POLICY, default 'default')")
    p.add_argument("--allow-policy-header", action="store_true", default=None,
                   help="let clients choose a policy per request with x-rein-policy")
    p.add_argument("--log-level", default="info")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from middleware.engine import Engine
    from middleware.proxy import create_app

    settings = Settings.from_env(host=args.host, port=args.port, upstream=args.upstream,
                                 middleware_model=args.middleware_model, policy=args.policy,
                                 allow_policy_header=args.allow_policy_header)
    try:
        engine = Engine.from_settings(settings)  # an invalid policy stops start-up here
    except PolicyError as e:
        print(f"rein: {e}", file=sys.stderr)
        return 2
    app = create_app(settings, engine)
    where = settings.upstream or "the embedded model (smollm2-135m-instruct)"
    print(f"rein: policy {engine.default_policy.name!r} in front of {where} on http://{settings.host}:{settings.port}/v1",
          file=sys.stderr)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level, access_log=False)
    return 0
