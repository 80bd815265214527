"""`rein` command line. Each subcommand lives in ``middleware/commands/<name>.py`` with
``add_arguments(parser)`` and ``run(args) -> int``; this file only wires them."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import middleware.commands as commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rein", description="Runtime middleware for tool-using agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"middleware.commands.{info.name}")
        p = sub.add_parser(info.name.replace("_", "-"), help=(module.__doc__ or "").strip().splitlines()[0])
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
