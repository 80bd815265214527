"""The evidence of a broken rule: the values it read, written for the plan and the decision log
(``order.status='shipped'``, the first 8; ``RuleProgram.shows`` says which variables, whole or by
field). A record's part is the same text for as long as the dialogue holds the same record (the
records of the extraction cache are the same objects): it is written once and kept (``Pieces``),
so a dialogue that tries a held write again, or breaks another rule over the same record, pays only
for what its arguments change.
"""
from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from inception.actions.plans import RuleProgram
from inception.actions.projection import Lazy

MAX_SHOWN = 8
# record parts kept (each keeps its records alive; the read ahead writes a dialogue's, a few dozen):
# emptied when full (a bound, not an LRU)
MAX_KEPT = 4096


class Pieces:
    """What ``evidence`` writes of each variable a rule shows, the records' parts kept by the rule,
    the records (by identity, kept alive with the entry) and the argument values that pick their
    entries (by repr: 1 and "1" pick differently)."""

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[Any, list[str]]] = {}
        self._lock = threading.Lock()

    def evidence(self, name: str, r: RuleProgram, bound: dict[str, Any], records: Any,
                 sent: dict[str, Any] | None = None, said: dict[Any, list[str]] | None = None) -> str:
        """``name: var.field=value, ...`` for rule ``r`` over ``bound`` (the typed arguments, the
        records and now); ``records``: the variables that are records the call binds. ``sent``:
        the call's arguments as the agent wrote them, shown for ``args`` (a date as it was sent, not
        as a typed time); ``said``: their parts already written for another rule of the call."""
        shown: list[str] = []
        args = bound["args"]
        for var, fields in r.shows:
            if len(shown) >= MAX_SHOWN:
                break
            if var == "args" and sent is not None:
                parts = said.get(fields) if said is not None else None
                if parts is None:
                    parts = written(var, fields, sent, MAX_SHOWN)
                    if said is not None:
                        said[fields] = parts
            else:
                parts = self._part(r, var, fields, bound, args, records)
            shown += parts[:MAX_SHOWN - len(shown)]
        return f"{name}: " + ", ".join(shown)

    def _part(self, r: RuleProgram, var: str, fields: tuple[str, ...] | None, bound: dict[str, Any],
              args: dict[str, Any], records: Any) -> list[str]:
        """What the evidence writes of ``var``: a record's parts and "now"'s kept (by the record's
        identity and the arguments that pick its entries; by the time itself)."""
        key = None
        if var in records and var in bound:
            value = bound[var]
            held = tuple(value) if isinstance(value, list) else (value,)
            key = (id(r), var, tuple(map(id, held)), tuple(repr(args.get(a)) for a in r.picks.get(var, ())))
        elif type(value := bound.get(var)) is datetime:  # now, today: the same for the whole dialogue
            return self._time_part(r, var, fields, value, args)
        if key is not None:
            found = self._kept.get(key)
            if found is not None and found[0][0] is r and all(x is y for x, y in zip(found[0][1], held)):
                return found[1]
        value = r.projectors[var](bound[var], args) if var in bound and var in r.projectors else None
        pieces = written(var, fields, value, MAX_SHOWN)
        if key is not None:
            self._keep(key, (r, held), pieces)
        return pieces

    def _time_part(self, r: RuleProgram, var: str, fields: tuple[str, ...] | None, value: datetime,
                  args: dict[str, Any]) -> list[str]:
        """What the evidence writes of a time (now, today): the same for every rule that shows it
        whole, so kept by the time alone (equal instants in other zones are written apart)."""
        key = (var, fields, value, value.utcoffset())
        found = self._kept.get(key)
        if found is not None:
            return found[1]
        projected = r.projectors[var](value, args) if var in r.projectors else None
        pieces = written(var, fields, projected, MAX_SHOWN)
        if projected is value:  # a projection of a time is the time: any rule's part is this one
            self._keep(key, (None, ()), pieces)
        return pieces

    def write_ahead(self, rules: list[RuleProgram], bound: dict[str, Any], records: Any) -> None:
        """Each part of now, today and the records the read ahead bound that a rule shows, written
        ahead of the draft (``ahead``): a check breaking the rule over them writes none. A part an
        argument picks waits for the call."""
        for r in rules:
            for var, fields in r.shows:
                value = bound.get(var)
                if type(value) is datetime or (var in records and value is not None and not r.picks.get(var)):
                    self._part(r, var, fields, bound, {}, records)

    def _keep(self, key: tuple, entry: tuple[Any, Any], pieces: list[str]) -> None:
        with self._lock:
            if len(self._kept) >= MAX_KEPT:
                self._kept.clear()
            self._kept[key] = (entry, pieces)


def written(var: str, fields: tuple[str, ...] | None, value: Any, most: int) -> list[str]:
    """The parts of one variable, at most ``most``: the whole value, or each field shown that it has."""
    if fields is None or not isinstance(value, dict):
        return [f"{var}={_short(value)}"]
    out: list[str] = []
    for f in fields:
        if len(out) >= most:
            break
        if f in value:
            out.append(f"{var}.{f}={_short(value.get(f))}")
    return out


def _short(value: Any) -> str:
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        text = repr(value)  # no isoformat, no items: written whole
    else:
        if hasattr(value, "isoformat"):
            value = value.isoformat()[:19]
        text = _repr_head(value, 81, kept=79)
    return text if len(text) <= 80 else text[:79] + "…"


def _repr_head(value: Any, limit: int, kept: int | None = None) -> str:
    """``repr(value)``, or a start of it at least ``limit`` characters long: a record's list of
    flights is cut to 80 characters in the evidence, so the rest of it is not written. A list,
    tuple or dict is written item by item as Python writes it, each item by repr. ``kept``: the
    caller keeps only that many characters of a text longer than ``limit`` - 1; once they are
    written with an item still to come (so the whole is longer), the item is not written and the
    text is padded to ``limit`` instead (a date list's second item: 77 characters were enough)."""
    kind = type(value)
    if kind is dict:
        items: Any = (f"{k!r}: {v!r}" for k, v in value.items())
        opening, closing = "{", "}"
    elif kind is list or kind is tuple or kind is Lazy:
        items = map(repr, value)
        opening, closing = ("(", ",)" if len(value) == 1 else ")") if kind is tuple else ("[", "]")
    else:
        return repr(value)
    out, size = [opening], 1
    items, left = iter(items), len(value)
    while left:  # the next item projected and written only when it is shown
        if size >= limit:
            return "".join(out)
        if kept is not None and size > 1 and size + 2 >= kept:
            # ", " makes ``kept`` characters and at least the item's first and the closing follow
            return "".join(out) + ", " + " " * max(0, limit - size - 2)
        item = next(items)
        left -= 1
        if size > 1:
            out.append(", ")
            size += 2
        out.append(item)
        size += len(item)
    out.append(closing)
    return "".join(out)
