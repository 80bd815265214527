"""`rein` command line. Each subcommand is a module with ``add_arguments(parser)`` and
``run(args) -> int``: the core's live in ``middleware/commands/<name>.py``; other packages add
theirs through the ``rein.commands`` entry-point group (``sim`` comes from ``sim_tests.cli``)::

    [project.entry-points."rein.commands"]
    sim = "sim_tests.cli"

This file only wires them."""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from importlib.metadata import entry_points
from types import ModuleType

import middleware.commands as commands

GROUP = "rein.commands"


def subcommands() -> dict[str, ModuleType]:
    """The core's commands, then those of the ``rein.commands`` entry points (a core name wins)."""
    found = {info.name.replace("_", "-"): importlib.import_module(f"middleware.commands.{info.name}")
             for info in pkgutil.iter_modules(commands.__path__) if not info.name.startswith("_")}
    for ep in entry_points(group=GROUP):
        if ep.name not in found:
            found[ep.name] = ep.load()
    return found


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rein", description="Runtime middleware for tool-using agents.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module in sorted(subcommands().items()):
        p = sub.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
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
