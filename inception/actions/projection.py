"""What the rules read of a value, cut out of it: converting a value into CEL costs per field, so a
record is cut down to the fields the rules use (a read tree of ``policies.cel_names``) before it is
converted. ``projector`` walks a tree once, when a tool is planned; ``project`` walks it per call.
"""
from __future__ import annotations

import functools
from typing import Any

from policies.cel_names import ALL, SIZE, merge


def project(value: Any, read: Any, args: dict[str, Any]) -> Any:
    """Only what the rules read of ``value`` (a read tree of policies.cel_names): converting a
    value into CEL costs per field, so a record is cut down to the fields the rules use, and a map
    read at the key an argument gives (``user.cards[args.card_id]``) to that one entry."""
    if read is ALL:
        return value
    if not read or read.keys() == {SIZE}:  # read for its size or presence only: its keys, or its length
        return _shape(value, args)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, sub in read.items():
            if k.startswith("[args."):
                key = args.get(k[6:-1])
                if isinstance(key, str) and key in value:
                    # what every entry is read for too (``[]``: a rule walking the map reads the
                    # picked entry as well), as a value converted ahead with every entry holds it
                    out[key] = project(value[key], merge(merge(sub, read.get(key, {})), read.get("[]", {})), args)
            elif k not in ("[]", SIZE) and k in value and k not in out:
                out[k] = project(value[k], sub, args)
        if "[]" in read:
            out.update({k: project(v, read["[]"], args) for k, v in value.items() if k not in out})
        elif SIZE in read:  # counted: every other entry by its key
            out.update({k: None for k in value if k not in out})
        return out
    if isinstance(value, list):
        subs = [sub for k, sub in read.items() if k == "[]" or k.startswith("[args.")]
        if not subs:
            return [None] * len(value)
        each = subs[0] if len(subs) == 1 else functools.reduce(merge, subs)
        return [project(v, each, args) for v in value]
    return value


def projector(read: Any, lazy: bool = False) -> Any:
    """``project`` with the read tree walked once: a function of (value, args) that gives what
    ``project(value, read, args)`` gives. Built when a tool is planned; a level that picks a map's
    entry by an argument (``[args.x]``) depends on the call and is projected as ``project`` does.
    ``lazy``: a list's items are projected as they are read (``Lazy``): the evidence shows the
    first 80 characters of a value, most often a few items of a list."""
    if read is ALL:
        return _same
    if not read or read.keys() == {SIZE}:
        return _shape
    if any(k.startswith("[args.") for k in read):
        return lambda value, args: project(value, read, args)
    plain = [(k, projector(sub, lazy)) for k, sub in read.items() if k not in ("[]", SIZE)]
    every = projector(read["[]"], lazy) if "[]" in read else _counted if SIZE in read else None

    def cut(value: Any, args: dict[str, Any]) -> Any:
        if isinstance(value, dict):
            out = {k: f(value[k], args) for k, f in plain if k in value}
            if every is not None:
                out.update({k: every(v, args) for k, v in value.items() if k not in out})
            return out
        if isinstance(value, list):
            if every is None:
                return [None] * len(value)
            return Lazy(value, every, args) if lazy else [every(v, args) for v in value]
        return value
    return cut


class Lazy:
    """A projected list whose items are projected when read: iterating it gives what the list
    ``[every(v, args) for v in items]`` holds (``evidence._repr_head`` writes it as that list)."""
    __slots__ = ("items", "every", "args")

    def __init__(self, items: list[Any], every: Any, args: dict[str, Any]):
        self.items, self.every, self.args = items, every, args

    def __iter__(self):
        return (self.every(v, self.args) for v in self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return repr(list(self))


def _counted(value: Any, args: dict[str, Any]) -> None:
    """An entry of a map read for its size, other than those read: there, by its key only."""
    return None


def _same(value: Any, args: dict[str, Any]) -> Any:
    return value


def _shape(value: Any, args: dict[str, Any]) -> Any:
    """A map or list read only for its size or presence (``size(user.cards) > 0``): its keys or
    length kept, its values not (an empty map would say the user has no card)."""
    if isinstance(value, dict):
        return dict.fromkeys(value)
    if isinstance(value, list):
        return [None] * len(value)
    return value
