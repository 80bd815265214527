"""Read, mark and export the decision log.

    rein decisions list --rule 'detect:*' --mode shadow        # newest first, one line each
    rein decisions show 3f2a9c…                                # one decision, as JSON
    rein decisions mark 3f2a9c… wrong --note "the user named the order"
    rein decisions export --wrong ./regressions                # each wrong one as a dialogue file
    rein decisions purge --days 30
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decision-db", help="SQLite file or postgresql:// DSN (REIN_DECISION_DB, default ./rein-decisions.db)")
    sub = p.add_subparsers(dest="action", required=True)
    ls = sub.add_parser("list", help="decisions, newest first")
    ls.add_argument("--rule", help="a rule id or glob (detect:*)")
    ls.add_argument("--mode", choices=["act", "flag", "shadow"])
    ls.add_argument("--tenant")
    ls.add_argument("--verdict", choices=["right", "wrong", "unmarked"])
    ls.add_argument("--since", help="15m, 1h, 24h, 7d or 30d")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    show = sub.add_parser("show", help="one decision with its dialogue, as JSON")
    show.add_argument("id")
    mark = sub.add_parser("mark", help="mark a decision right or wrong")
    mark.add_argument("id")
    mark.add_argument("verdict", choices=["right", "wrong", "clear"])
    mark.add_argument("--note", default="")
    export = sub.add_parser("export", help="write decisions marked wrong as dialogue files (rein diagnose / refine, "
                                           "bench/real_dialogues.py --data DIR/trajectories.json)")
    export.add_argument("--wrong", required=True, metavar="DIR", help="the directory to write them to")
    purge = sub.add_parser("purge", help="delete decisions older than --days")
    purge.add_argument("--days", type=float, required=True)


def run(args: argparse.Namespace) -> int:
    from middleware.decisions import open_decision_store
    from middleware.decisions.export import export_wrong
    from middleware.decisions.ui import filters_of

    store = open_decision_store(args.decision_db)
    if args.action == "list":
        filters = filters_of({"rule": args.rule, "mode": args.mode, "tenant": args.tenant,
                              "verdict": args.verdict, "time": args.since})
        for d in store.page(filters, limit=args.limit):
            if args.json:
                print(json.dumps(d, ensure_ascii=False))
            else:
                print(f"{d['id']}  {d['tenant']:<10} turn {d['turn']:>3}  {d['mode']:<6} {d['rule']}"
                      + (f"  [{d['verdict']}]" if d["verdict"] else ""))
        return 0
    if args.action == "show":
        d = store.get(args.id)
        if d is None:
            print(f"rein: no decision {args.id}", file=sys.stderr)
            return 1
        print(json.dumps({**d, "dialogue": store.dialogue(d["request_id"])}, indent=1, ensure_ascii=False))
        return 0
    if args.action == "mark":
        if not store.mark(args.id, None if args.verdict == "clear" else args.verdict, args.note):
            print(f"rein: no decision {args.id}", file=sys.stderr)
            return 1
        return 0
    if args.action == "export":
        written, skipped = export_wrong(store, args.wrong)
        for path in written:
            print(path)
        for why in skipped:
            print(f"rein: skipped {why}", file=sys.stderr)
        return 0 if written or not skipped else 1
    print(f"rein: {store.purge(args.days)} decision(s) deleted", file=sys.stderr)
    return 0
