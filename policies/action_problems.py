"""What the loader checks in a pack's ``actions:`` section, each problem with its path under
``actions`` (``policies.loader`` puts the YAML line on it): a rule naming a field no tool returns or
a tool the pack does not know, a bind that names no record, a CEL expression that does not compile.
A rule that passes gets its compiled programs and what it reads (``policies.cel_names``) here.
"""
from __future__ import annotations

import fnmatch
import re
from typing import Any

from policies.actions import BUILTINS, IDENT, RESERVED, ActionRule, ActionSettings, FieldSpec, ToolSpec, compile_cel, is_glob
from policies.cel_names import Scope, names_in

Problem = tuple[tuple[str | int, ...], str]


def action_problems(s: ActionSettings) -> list[Problem]:
    """Every problem of the section, each with its path under ``actions``: what the loader puts a line on."""
    out: list[Problem] = []
    known = set(s.tools) | {src.tool for kind in s.records.values() for src in kind.from_}
    for name in s.builtins:
        if name not in BUILTINS:
            out.append((("builtins", name), f"unknown built-in check {name!r}; known: {', '.join(BUILTINS)}"))
    for i, src in enumerate(s.now):
        given = [k for k in ("header", "system_prompt", "tool", "value") if getattr(src, k) is not None]
        if len(given) != 1:
            out.append((("now", i), "give exactly one of header, system_prompt, tool (with its field, or none: "
                                     "the whole result is the time), value"))
        if src.system_prompt is not None:
            out += _regex_problem(("now", i, "system_prompt"), src.system_prompt)
    out += _regex_problem(("confirmation",), s.confirmation)
    for kind_name, kind in s.records.items():
        if not re.match(IDENT, kind_name):
            out.append((("records", kind_name), "a record kind is a lower-case identifier"))
        for j, src in enumerate(kind.from_):
            if not (src.key.startswith("args.") or (kind.fields and src.key in kind.fields) or not kind.fields):
                out.append((("records", kind_name, "from", j, "key"),
                            f"{src.key!r} is neither args.<argument> nor a field of {kind_name}"))
    for tool_name, spec in s.tools.items():
        out += _bind_problems(s, tool_name, spec)
    seen: set[tuple[str, str]] = set()
    for i, rule in enumerate(s.rules):
        if (rule.id, rule.tool) in seen:  # one id may name the same rule on several tools
            out.append((("rules", i, "id"), f"rule {rule.id!r} is defined twice for {rule.tool!r}"))
        seen.add((rule.id, rule.tool))
        matched = [t for t in known if t == rule.tool or (is_glob(rule.tool) and fnmatch.fnmatchcase(t, rule.tool))]
        if not matched:
            out.append((("rules", i, "tool"), f"names tool {rule.tool!r}, which the pack does not know "
                        f"(actions.tools or a record's from): {', '.join(sorted(known)) or 'none'}"))
            continue
        out += _rule_problems(s, i, rule, matched)
    return out


def _regex_problem(loc: tuple[str | int, ...], pattern: str) -> list[Problem]:
    try:
        re.compile(pattern)
    except re.error as e:
        return [(loc, f"not a regular expression: {e}")]
    return []


def _bind_problems(s: ActionSettings, tool_name: str, spec: ToolSpec) -> list[Problem]:
    out: list[Problem] = []
    earlier: set[str] = set()
    for name, bind in spec.binds().items():
        loc = ("tools", tool_name, "bind", name)
        if name in RESERVED or not re.match(IDENT, name):
            out.append((loc, f"{name!r} cannot name a bind (a lower-case identifier, not one of {sorted(RESERVED)})"))
        kind = s.records.get(bind.record)
        if kind is None:
            out.append((loc, f"names record {bind.record!r}, which actions.records does not define"))
        root, _, rest = bind.key.partition(".")
        field = rest.replace("[]", "").strip(".").split(".")[0]
        if root == "args":
            if spec.arguments and field not in spec.arguments:
                out.append((loc, f"{tool_name} has no argument {field!r}"))
        elif root in earlier:
            src_kind = s.records.get(spec.binds()[root].record)
            if src_kind is not None and src_kind.fields and field not in src_kind.fields:
                out.append((loc, f"record {spec.binds()[root].record!r} has no field {field!r}"))
        else:
            out.append((loc, f"key {bind.key!r} starts with neither args nor an earlier bind"))
        earlier.add(name)
    return out


def _rule_problems(s: ActionSettings, i: int, rule: ActionRule, tools: list[str]) -> list[Problem]:
    out: list[Problem] = []
    specs = [s.tool(t) or ToolSpec() for t in tools]
    bind_sets = [sp.binds() for sp in specs]
    common = set(bind_sets[0]).intersection(*bind_sets[1:]) if bind_sets else set()
    scope = Scope(fields={}, lists=set(), tables=set(s.tables))
    for name in common:
        b = bind_sets[0][name]
        kind = s.records.get(b.record)
        scope.fields[name] = _fields_of(kind.fields) if kind is not None and kind.fields else None
        if "[]" in b.key:
            scope.lists.add(name)
    args = specs[0].arguments if len(specs) == 1 else {}
    scope.fields["args"] = _fields_of(args) if args else None
    reads: dict[str, dict[str, Any]] = {}
    programs = []
    for attr in ("when", "condition"):
        text = getattr(rule, attr)
        if text is None:
            programs.append(None)
            continue
        try:
            programs.append(compile_cel(text))
        except (ValueError, RuntimeError) as e:
            out.append((("rules", i, attr), f"not a CEL expression: {str(e).splitlines()[0][:200]}"))
            continue
        found = names_in(text, scope, RESERVED)
        out += [(("rules", i, attr), problem) for problem in found.problems]
        reads[attr] = found.uses
    if not out:
        rule._programs = (programs[0], programs[1])
        rule._reads = reads
    return out


def _fields_of(fields: dict[str, Any]) -> dict[str, Any]:
    """Field name -> its spec as Scope wants it: enum values, item fields."""
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        spec = spec if isinstance(spec, FieldSpec) else FieldSpec(type=spec)
        out[name] = spec
    return out


