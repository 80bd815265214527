"""A tool result read as records, whatever its format: JSON, YAML (block or flow, which also reads
Python's ``{'key': 'value'}`` repr), ``Key: value`` lines, a Markdown table, or CSV. Values stay text
(YAML's own typing would turn ``10:30`` into 630 and ``no`` into False); the fact reader types them.

    >>> read_records("- amount: 100.0\\n  date: '2022-01-01'\\n  id: 1")
    [{'amount': '100.0', 'date': '2022-01-01', 'id': '1'}]
    >>> read_records("| order | status |\\n|---|---|\\n| W1 | pending |")
    [{'order': 'W1', 'status': 'pending'}]
    >>> read_records("The flight is on time.") is None
    True

``None`` means prose: the caller reads it sentence by sentence. Parsing is linear in the text
(libyaml when installed; the pure-Python reader only for short texts), and aliases are kept as the
one shared object they are: whoever walks the result bounds its own walk.
"""
from __future__ import annotations

import csv
import json
import re
from typing import Any

import yaml

from refiners.text import BLANK_LINE

_LOADER = getattr(yaml, "CBaseLoader", None)
PURE_PYTHON_LIMIT = 8_000   # characters parsed by PyYAML's Python reader when libyaml is absent
# The head of a structured text: "- key: value", "key: value", "- item", a flow mapping or sequence.
_YAML_HEAD = re.compile(r"\s*(?:-\s+)?(?:[\w .'\"()/-]{1,60}:(?:\s|$)|\{|\[)|\s*-\s+\S")
_TOP_KEY = re.compile(r"^([^\s:#-][^:\n]{0,60}):(?:[ \t]|$)", re.M)  # a key at a line's start
_TABLE_ROW = re.compile(r"\s*\|.*\|\s*$")
# (each run of blanks has one place to go: two optional blanks around an optional bar backtrack)
_TABLE_RULE = re.compile(r"\s*(?:\|\s*)?:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*(?:\|\s*)?$")


def read_records(text: str) -> Any:
    """The text's records (a dict, a list, or a scalar JSON value), or None when it is prose."""
    stripped = text.strip()
    if not stripped:
        return None
    data = _json(stripped)
    if data is not None:
        return data
    if stripped[:1] == "|" or "\n|" in stripped[:2000]:
        table = _table(stripped)
        if table:
            return table
    if _YAML_HEAD.match(stripped):
        data = _yaml(stripped)
        # One "Key: value" line is a sentence with a label ("Error: flight HAT030 not available"), not
        # a record: its words stay together as prose.
        if isinstance(data, dict) and len(data) >= 2:
            return _blocks(stripped) or data
        if isinstance(data, list) and len(data) >= 2 or isinstance(data, list) and data and isinstance(data[0], dict):
            return data
    return _csv(stripped)


# a CSV header: two or more short names (at most three words each, no sentence's stop), separated by
# a bare comma (prose puts a blank after its commas: "Hello, world" is no header)
_CSV_HEAD = re.compile(r"[A-Za-z_][\w()/-]*(?: [\w()/-]+){0,2}(?:,[A-Za-z_][\w()/-]*(?: [\w()/-]+){0,2})+")


def _csv(stripped: str) -> list[dict[str, str]] | None:
    """A CSV result: a header line of distinct names, then rows with as many comma-separated fields
    ("train,departure,price" / "ICE 1007,8:28,€64.90"): a list of records, not prose."""
    head, _, rest = stripped.partition("\n")
    if not rest or not _CSV_HEAD.fullmatch(head.strip()):
        return None
    rows = list(csv.reader(stripped.splitlines()))
    names = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    if len(set(names)) != len(names) or not body or any(len(r) != len(names) for r in body):
        return None
    return [dict(zip(names, (c.strip() for c in r))) for r in body]


def _blocks(stripped: str) -> list[dict] | None:
    """Blank-line-separated "Key: value" blocks whose keys repeat ("Order: SO-1 / Ship by: ..." then
    "Order: SO-2 / ..."): a list of records, not one mapping that keeps only the last block's values.
    None when no key at a line's start repeats (looked for before any block is parsed again)."""
    if BLANK_LINE.search(stripped) is None:
        return None
    seen: set[str] = set()
    for key in _TOP_KEY.findall(stripped):
        if key in seen:
            break
        seen.add(key)
    else:
        return None
    blocks = [_yaml(b) for b in BLANK_LINE.split(stripped) if b.strip()]
    if len(blocks) < 2 or not all(isinstance(b, dict) and b for b in blocks):
        return None
    keys = [k for b in blocks for k in b]
    return blocks if len(keys) != len(set(keys)) else None


def _json(stripped: str) -> Any:
    if stripped[:1] not in "{[" and not (stripped[0] in "-0123456789" and stripped.lstrip("-0123456789.eE+") == ""):
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _yaml(stripped: str) -> Any:
    loader = _LOADER
    if loader is None:
        if len(stripped) > PURE_PYTHON_LIMIT:
            return None
        loader = yaml.BaseLoader
    try:
        return yaml.load(stripped, Loader=loader)  # noqa: S506 - a base loader builds only str, list and dict
    except (yaml.YAMLError, RecursionError, ValueError):
        return None


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") else inner
    return [c.strip().strip("*`").strip() for c in inner.split("|")]


def _table(stripped: str) -> list[dict[str, str]] | None:
    """The first Markdown table in the text: a header row, a rule, then rows of the same width."""
    lines = stripped.splitlines()
    for i in range(len(lines) - 1):
        if _TABLE_ROW.match(lines[i]) and _TABLE_RULE.match(lines[i + 1]) and "|" in lines[i + 1]:
            head = _cells(lines[i])
            rows = []
            for line in lines[i + 2:]:
                if not _TABLE_ROW.match(line):
                    break
                cells = _cells(line)
                if len(cells) == len(head):
                    rows.append(dict(zip(head, cells)))
            return rows or None
    return None
