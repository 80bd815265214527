"""Limits on JSON that comes from a client, one value for every surface (proxy routes, SDK,
persona profiles), so a body one path accepts cannot break another.

orjson parses 1,024 levels but serialises only 255, and Python's ``json`` and recursive walks
stop near 1,000: a body nested 256 deep parsed fine and then failed where rein re-serialised
it. Real requests (JSON Schemas for tool parameters included) stay far below ``MAX_DEPTH``.

    >>> too_deep({"a": [[1]]}, limit=2)
    'a.0'
    >>> too_deep({"a": [1]}, limit=2) is None
    True
"""
from __future__ import annotations

from typing import Any

MAX_DEPTH = 64
_SCALARS = {str, int, float, bool, type(None)}


def too_deep(value: Any, limit: int = MAX_DEPTH) -> str | None:
    """The dotted path of the first container nested deeper than ``limit`` levels, or None.
    A loop over an explicit stack, not recursion: it cannot raise ``RecursionError`` itself. The
    walk carries depths only (every request pays for it); the path is found only for a body that
    fails."""
    if not isinstance(value, (dict, list)):
        return None
    containers = (dict, list)
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth = pop()
        children = node.values() if isinstance(node, dict) else node
        # A long list of scalars (a million integers fit in 8 MiB) is skipped at C speed, not item by item.
        if len(children) > 1000 and set(map(type, children)) <= _SCALARS:
            continue
        for child in children:
            if isinstance(child, containers):
                if depth + 1 > limit:
                    return _path_past(value, limit)
                push((child, depth + 1))
    return None


def _path_past(value: Any, limit: int) -> str:
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        for key, child in (node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(child, (dict, list)):
                where = f"{path}.{key}" if path else str(key)
                if depth + 1 > limit:
                    return where
                stack.append((child, depth + 1, where))
    return ""
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in items:
            if isinstance(child, (dict, list)):
                where = f"{path}.{key}" if path else str(key)
                if depth + 1 > limit:
                    return where
                stack.append((child, depth + 1, where))
    return None
