"""Records the dialogue fetched, typed by the pack: every successful result of a tool that a record
kind names in ``from`` gives records, found again by their key (an argument of the call or a field).

Parsing a result is the costly part, and every request of a tool loop re-sends the same results:
extraction is cached on the text of the result (with the tool and its arguments), so a dialogue
pays for each result once, however many drafts are checked after it.
"""
from __future__ import annotations

import ast
import re
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import yaml

from inception.tool_results import failure_in
from policies.actions import ActionSettings, FieldSpec, RecordSource

_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?")
Record = dict[str, Any]
_AS_IS = {"string", "enum", "bool", "map", "any"}  # types a value is not converted to


_TIMES: dict[str, datetime | None] = {}  # parse_time of short texts: a dialogue's dates recur in every record
_MAX_TIMES = 8192


def parse_time(text: Any) -> datetime | None:
    """An ISO-like date or time as an aware datetime; a time with no offset is taken as UTC, so
    times written alike compare alike (a trailing zone name such as "EST" is not read).

    >>> parse_time("2024-05-15 15:00:00 EST").isoformat()
    '2024-05-15T15:00:00+00:00'
    >>> parse_time("2024-05-20").isoformat(), parse_time("soon")
    ('2024-05-20T00:00:00+00:00', None)
    >>> parse_time("Thursday, 3 December 2026 at 2:30 pm").isoformat(), parse_time("May 15th, 2024").isoformat()
    ('2026-12-03T14:30:00+00:00', '2024-05-15T00:00:00+00:00')
    >>> parse_time("03/04/2024"), parse_time("you may 2 go")
    (None, None)
    """
    if type(text) is str and len(text) <= 64:
        found = _TIMES.get(text, _NOT_READ)
        if found is _NOT_READ:
            if len(_TIMES) >= _MAX_TIMES:
                _TIMES.clear()
            found = _TIMES[text] = _parse_time(text)
        return found  # type: ignore[return-value]
    return _parse_time(text)


_NOT_READ = object()


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    m = _TIME.search(text)
    if m is None:
        return _worded_time(text)
    y, mo, d, h, mi, s, off = m.groups()
    tz = timezone.utc
    if off and off != "Z":
        sign = 1 if off[0] == "+" else -1
        digits = off[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        out = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0), tzinfo=tz)
    except ValueError:
        return None
    return out.astimezone(timezone.utc)


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTH = (r"(january|february|march|april|may|june|july|august|september|october|november|december"
          r"|jan|feb|mar|apr|jun|jul|aug|sept|sep|oct|nov|dec)\b\.?")
# "15 May 2024", "May 15, 2024", "Thursday, 3 December 2026 at 2:30 pm": a month by its name is
# never ambiguous (03/04/2024 is, and is not read)
_WORDED = re.compile(rf"\b(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH},?\s+(\d{{4}})|{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}}))"
                     r"(?:,?\s+(?:at\s+)?(\d{1,2}):(\d{2})(?::(\d{2}))?\s*([ap])?\.?m?\b\.?)?", re.I)


def _worded_time(text: str) -> datetime | None:
    m = _WORDED.search(text)
    if m is None:
        return None
    d1, mon1, y1, mon2, d2, y2, h, mi, s, half = m.groups()
    hour = int(h or 0)
    if half and hour <= 12:
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    try:
        return datetime(int(y1 or y2), _MONTHS.index((mon1 or mon2).lower()[:3]) + 1, int(d1 or d2), hour,
                        int(mi or 0), int(s or 0), tzinfo=timezone.utc)
    except ValueError:
        return None


def typed(value: Any, spec: Any) -> Any:
    """``value`` as the field's type says; a value that is not of that type is left as it is."""
    kind, items = (spec.type, spec.items) if isinstance(spec, FieldSpec) else (spec, None)
    if kind in _AS_IS:
        return value
    if kind in ("date", "datetime"):
        return parse_time(value) or value
    if kind in ("money", "number"):
        if isinstance(value, str):
            try:
                return float(value.replace(",", "").lstrip("$€£"))
            except ValueError:
                return value
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "list" and items and isinstance(value, list):
        return [typed_object(v, items) if isinstance(v, dict) else v for v in value]
    return value


def typed_object(obj: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    if not fields:
        return obj
    found = _TYPED.get(id(fields))
    if found is None or found[0] is not fields:
        if len(_TYPED) >= 4096:
            _TYPED.clear()
        found = _TYPED[id(fields)] = (fields, {k: spec for k, spec in fields.items() if _kind(spec) not in _AS_IS})
    converted = found[1]  # the fields ``typed`` may change: the others are copied as they are
    return {k: (typed(v, converted[k]) if k in converted else v) for k, v in obj.items()}


# the fields of a spec that ``typed`` may change, by the spec's id (the spec kept with its entry):
# a call's arguments and the records are typed for every check, most of their fields as they are
_TYPED: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}


def _kind(spec: Any) -> str:
    return spec.type if isinstance(spec, FieldSpec) else spec


def _at(obj: Any, path: str) -> list[Any]:
    """The values at ``path`` ('' itself, '[]' each element, 'items.[]' each of its items). '[]' on
    a map walks its values: results often key records by their ids ({"9007697085": {...}})."""
    found = [obj]
    for step in [p for p in path.split(".") if p]:
        nxt: list[Any] = []
        for o in found:
            if step == "[]":
                nxt += o if isinstance(o, list) else list(o.values()) if isinstance(o, dict) else []
            elif isinstance(o, dict) and step in o:
                nxt.append(o[step])
        found = nxt
    return found


class _Untyped:
    __slots__ = ("item",)

    def __init__(self, item: Record):
        self.item = item


class RecordExtractor:
    """Turns one tool result into (kind, key, record) triples, cached by the result's text."""

    def __init__(self, settings: ActionSettings, cache_size: int = 4096):
        self.sources: dict[str, list[tuple[str, RecordSource]]] = {}
        self.tools_of: dict[str, set[str]] = {}  # record kind -> the tools whose results hold it
        self.fields = {kind: spec.fields for kind, spec in settings.records.items()}
        for kind, spec in settings.records.items():
            for src in spec.from_:
                self.sources.setdefault(src.tool, []).append((kind, src))
                self.tools_of.setdefault(kind, set()).add(src.tool)
        self._cache: OrderedDict[tuple[str, str, str], dict[str, dict[str, Any]]] = OrderedDict()
        self.cache_size = cache_size

    def record(self, tool: str, arguments: str, result: str, kind: str, key: str) -> Record | None:
        """The record of this kind with this key in one result (the last item with the key), typed."""
        found = self.extract(tool, arguments, result).get(kind, {}).get(key)
        if type(found) is _Untyped:
            # typed when first asked for: a search result holds dozens of records, a rule reads one
            found = self.extract(tool, arguments, result)[kind][key] = typed_object(found.item, self.fields[kind])
        return found

    def extract(self, tool: str, arguments: str, result: str) -> dict[str, dict[str, Any]]:
        """kind -> key -> record (typed once ``record`` asked for it), of one result."""
        sources = self.sources.get(tool)
        if not sources:
            return {}
        key = (tool, arguments, result)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        try:
            args = orjson.loads(arguments)
        except orjson.JSONDecodeError:
            args = None
        out: dict[str, dict[str, Any]] = {}
        for kind, ident, item in self._extract(sources, args if isinstance(args, dict) else {}, result):
            out.setdefault(kind, {})[ident] = _Untyped(item)
        self._cache[key] = out
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return out

    def _extract(self, sources: list[tuple[str, RecordSource]], args: dict[str, Any], result: str) -> list[tuple[str, str, Record]]:
        if failure_in(result):
            return []
        data = read_data(result)
        if data is None:
            return []
        out = []
        for kind, src in sources:
            for item in _at(data, src.items):
                if not isinstance(item, dict):
                    continue
                if src.key.startswith("args."):
                    ident = args.get(src.key[5:])
                else:
                    ident = item.get(src.key)
                if isinstance(ident, (str, int)) and not isinstance(ident, bool):
                    if src.arguments:
                        item = {**item, **{f: args[f] for f in src.arguments if f in args}}
                    out.append((kind, str(ident), item))
        return out


def read_data(result: str) -> Any:
    """A tool result as data: JSON, else Python's repr (``{'id': 6}``), else YAML, which tool
    runtimes print (AgentDojo's do); None for prose. YAML is read with JSON's
    types only: ``10:30``, ``no`` and ``2022-01-01`` stay text, as the same value in JSON would be.

    >>> read_data("- id: 6\\n  recipient: DE89\\n  recurring: true\\n  date: 2022-04-01\\n  at: 10:30")
    [{'id': 6, 'recipient': 'DE89', 'recurring': True, 'date': '2022-04-01', 'at': '10:30'}]
    >>> read_data("{'message': 'Transaction with ID 6 updated.'}"), read_data("Done."), read_data("Sent: it will arrive today.\\nThanks!")
    ({'message': 'Transaction with ID 6 updated.'}, None, None)
    """
    try:
        return orjson.loads(result)
    except orjson.JSONDecodeError:
        pass
    head = result[:64].lstrip()[:1]
    if (head == "{" or head == "[") and len(result) <= _REPR_LIMIT:
        try:  # Python's repr, exactly (its escapes are not YAML's); literals only, nothing runs
            data = ast.literal_eval(result.strip())
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            data = None
        if isinstance(data, (dict, list)):
            return data
    if len(result) > _YAML_LIMIT or not _YAML_HEAD.match(result):
        return None
    try:
        data = yaml.load(result, Loader=_JsonTypedLoader)  # noqa: S506 - a safe loader, JSON's scalar types
    except (yaml.YAMLError, RecursionError, ValueError):
        return None
    return data if isinstance(data, (dict, list)) else None


# Characters read as a Python literal or as YAML: both readers hold the event loop about 0.7 ms a
# KB (libyaml; the pure-Python reader much more), JSON's 0.004: a longer result gives no records
# (its rules are not judged) rather than a stall
_REPR_LIMIT = 32_000
_YAML_LIMIT = 32_000 if hasattr(yaml, "CSafeLoader") else 8_000
# the head of a structured text: "- key: value", "key: value", a flow mapping or sequence
_YAML_HEAD = re.compile(r"\s*(?:-\s+)?[\w .'\"()/-]{1,60}:(?:\s|$)|\s*[{\[]|\s*-\s+\S")


class _JsonTypedLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML with JSON's scalars: true/false, null (and Python's None), decimal ints and floats;
    anything else is text."""
    yaml_implicit_resolvers: dict = {}


for _tag, _pattern, _first in (
        ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
        ("int", r"^[-+]?(?:0|[1-9][0-9]*)$", "-+0123456789"),
        ("float", r"^[-+]?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$", "-+0123456789."),
        ("null", r"^(?:~|null|Null|NULL|None|)$", ["~", "n", "N", ""])):  # None: Python's repr
    _JsonTypedLoader.add_implicit_resolver(f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first))
