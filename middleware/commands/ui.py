"""Serve the page that reviews rein's decisions (the decision log), on its own.

    rein ui --decision-db ./rein-decisions.db            # http://127.0.0.1:8081/rein/

The proxy serves the same pages under /rein/ behind the operator's admin key; this command reads
the log directly (a SQLite file or a postgresql:// DSN) and needs no key on 127.0.0.1 unless given
one (REIN_ADMIN_KEY or --require-key)."""
from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decision-db", help="the decision log: SQLite file or postgresql:// DSN "
                                         "(REIN_DECISION_DB, default ./rein-decisions.db)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8081, help="port (default 8081)")
    p.add_argument("--require-key", action="store_true",
                   help="ask for REIN_ADMIN_KEY (as the password the browser prompts for); always on off 127.0.0.1")


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from middleware.decisions import open_decision_store
    from middleware.decisions.ui import create_ui_app

    key = os.environ.get("REIN_ADMIN_KEY") or None
    local = args.host in ("127.0.0.1", "localhost", "::1")
    if (args.require_key or not local) and not key:
        print("rein: the decision pages off 127.0.0.1 need REIN_ADMIN_KEY", file=sys.stderr)
        return 2
    store = open_decision_store(args.decision_db)
    app = create_ui_app(store, key if (args.require_key or not local) else None)
    print(f"rein: decisions in {store.target if not store.postgres else 'PostgreSQL'} on "
          f"http://{args.host}:{args.port}/rein/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
