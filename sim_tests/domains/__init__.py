"""The shipped simulation domains, by name."""
from __future__ import annotations

import importlib

from sim_tests.domains.base import Domain, Environment, Tool, ToolCallRecord, ToolError, db_hash

SHIPPED = ("retail", "travel")


def get_domain(name: str) -> Domain:
    if name not in SHIPPED:
        raise KeyError(f"unknown domain {name!r}; known: {', '.join(SHIPPED)}")
    return importlib.import_module(f"sim_tests.domains.{name}").domain


__all__ = ["Domain", "Environment", "SHIPPED", "Tool", "ToolCallRecord", "ToolError", "db_hash", "get_domain"]
