"""Policy packs: print the JSON Schema, or validate pack files."""
from __future__ import annotations

import argparse
import json
import sys

from policies.loader import PolicyError, load_policy, shipped
from policies.schema import Policy


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    sub.add_parser("schema", help="print the JSON Schema of a policy pack (for editors)")
    v = sub.add_parser("validate", help="check pack files; each problem is named by its YAML path")
    v.add_argument("files", nargs="+", metavar="FILE")
    sub.add_parser("list", help="the shipped packs")


def run(args: argparse.Namespace) -> int:
    if args.action == "schema":
        print(json.dumps(Policy.model_json_schema(), indent=2))
        return 0
    if args.action == "list":
        for name in shipped():
            print(f"{name}: {load_policy(name).description}")
        return 0
    status = 0
    for path in args.files:
        try:
            policy = load_policy(path)
        except PolicyError as e:
            print(str(e), file=sys.stderr)
            status = 1
            continue
        print(f"{path}: ok (policy {policy.name!r}: {len(policy.taxonomy)} error types, "
              f"{len(policy.recovery_tools)} recovery tools, trigger {policy.inception.trigger})")
    return status
