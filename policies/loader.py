"""Find and load policy packs by name (shipped) or path.

Every problem is reported with its YAML path and line, e.g.::

    my.yaml: invalid policy
      taxonomy[2].recovery_tool (line 31): names recovery tool 'refund', which recovery_tools does not define
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policies import plugins
from policies.rules import known_rules, unknown_patterns
from policies.schema import BUILTIN_REFINERS, CrossFieldProblems, Policy

PACKS = Path(__file__).parent / "packs"


class PolicyError(ValueError):
    """A policy pack that cannot be loaded; the message names the file and each field."""


def shipped() -> list[str]:
    return sorted(p.stem for p in PACKS.glob("*.yaml"))


def _path_for(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    shipped_path = PACKS / f"{name_or_path}.yaml"
    if shipped_path.exists():
        return shipped_path
    raise PolicyError(f"unknown policy {name_or_path!r}: not a file and not one of {', '.join(shipped())}")


def yaml_path(loc: tuple[Any, ...]) -> str:
    """('taxonomy', 2, 'plan') -> 'taxonomy[2].plan'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(root: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the deepest node on ``loc`` that exists in the document."""
    node = root
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            if child is None:  # a missing or unknown key: point at the key if present, else the mapping
                child = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
    return node.start_mark.line + 1 if node is not None else None


def _problems(err: ValidationError) -> list[tuple[tuple[Any, ...], str]]:
    out = []
    for e in err.errors():
        cross = (e.get("ctx") or {}).get("error")
        if isinstance(cross, CrossFieldProblems):
            out += [(tuple(e["loc"]) + loc, msg) for loc, msg in cross.problems]
        else:
            out.append((tuple(e["loc"]), e["msg"]))
    return out


def format_errors(source: str, err: ValidationError, root: yaml.Node | None = None,
                  own: Any = None, merged: Any = None) -> str:
    """``own``/``merged``: for a pack that extends another, this file's data and the merged data,
    so a problem is placed on this file's line (problems inherited from the parent get none)."""
    lines = [f"{source}: invalid policy"]
    for loc, msg in _problems(err):
        at = loc if merged is None else _own_loc(loc, own, merged)
        line = _line_of(root, at) if root is not None and at is not None else None
        lines.append(f"  {yaml_path(loc)}{f' (line {line})' if line else ''}: {msg}")
    return "\n".join(lines)


def _own_loc(loc: tuple[Any, ...], own: Any, merged: Any) -> tuple[Any, ...] | None:
    """``loc`` in the merged data as a path in this file's own data, or None when the value at
    ``loc`` came from the parent. Keyed lists (taxonomy, recovery_tools) merge by identity, so
    an index into the merged list is found again in this file's list by that identity."""
    out: list[Any] = []
    key = None
    for part in loc:
        if isinstance(part, int) and isinstance(merged, list) and isinstance(own, list):
            if part >= len(merged):
                return tuple(out)
            if key in _KEYED:
                ident = _KEYED[key]
                target = merged[part]
                match = next((i for i, e in enumerate(own) if isinstance(e, dict) and isinstance(target, dict)
                              and ident(e) == ident(target)), None)
                if match is None:
                    return None
                part_own = match
            else:
                part_own = part
            if part_own >= len(own):
                return None
            own, merged = own[part_own], merged[part]
            out.append(part_own)
        elif isinstance(merged, dict) and isinstance(own, dict):
            if part not in own:
                # An unknown key is reported on the mapping that holds it; a missing one, on its parent.
                return tuple(out) if part not in merged else None
            own, merged = own[part], merged.get(part)
            out.append(part)
        else:
            break
        key = part
    return tuple(out)


def _read_yaml(text: str, source: str) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as e:
        raise PolicyError(f"{source}: not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: a policy is a YAML mapping")
    return data, root


_KEYED = {"taxonomy": lambda e: (e.get("type"), e.get("subtype")), "recovery_tools": lambda t: t.get("name")}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        old = base.get(key)
        if key in _KEYED and isinstance(old, list) and isinstance(value, list):
            ident = _KEYED[key]
            merged = {ident(e) if isinstance(e, dict) else id(e): e for e in old}
            merged.update({ident(e) if isinstance(e, dict) else id(e): e for e in value})
            out[key] = list(merged.values())
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = _merge(old, value)
        else:
            out[key] = value
    return out


def _resolve_extends(data: dict[str, Any], source: str, depth: int = 0) -> dict[str, Any]:
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise PolicyError(f"{source}: extends: must be a pack name or path")
    if depth > 4:
        raise PolicyError(f"{source}: extends: chain too deep (a cycle?)")
    relative = Path(source).parent / parent
    try:
        path = relative if relative.suffix in (".yaml", ".yml") and relative.exists() else _path_for(parent)
    except PolicyError as e:
        raise PolicyError(f"{source}: extends: {e}") from None
    if not path.exists():
        raise PolicyError(f"{source}: extends: no such pack file {str(relative if relative.suffix else path)!r}")
    try:
        text = path.read_text()
    except OSError as e:
        raise PolicyError(f"{source}: extends: cannot read {path}: {e}") from e
    base, _ = _read_yaml(text, str(path))
    base = _resolve_extends(base, str(path), depth + 1)
    base.pop("name", None), base.pop("description", None)
    return _merge(base, data)


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy from YAML text (raises PolicyError naming each problem)."""
    own, root = _read_yaml(text, source)
    data = _resolve_extends(own, source) if own.get("extends") is not None else own
    try:
        policy = Policy.model_validate(data)
    except ValidationError as e:
        merged = data if data is not own else None
        raise PolicyError(format_errors(source, e, root, own, merged)) from e
    if policy.plugins or policy.refiners.refiners != list(BUILTIN_REFINERS):
        problems = _plugin_problems(policy)
        if problems:
            at = (lambda loc: loc) if data is own else (lambda loc: _own_loc(loc, own, data))
            lines = [f"{source}: invalid policy"]
            for loc, msg in problems:
                line = _line_of(root, at(loc)) if root is not None and at(loc) is not None else None
                lines.append(f"  {yaml_path(loc)}{f' (line {line})' if line else ''}: {msg}")
            raise PolicyError("\n".join(lines))
    if policy.rules:
        _check_rules(policy, source, root, own, data)
    return policy


def _check_rules(policy: Policy, source: str, root: yaml.Node | None, own: Any, data: Any) -> None:
    """A ``rules:`` entry must name a rule this policy can report (policies.rules.known_rules)."""
    names = []
    for spec in policy.plugins:
        obj = plugins.load(spec)  # already loaded once by _plugin_problems: it imports
        if plugins.kind(obj) == "refiner":
            names.append(obj.name)
    problems = unknown_patterns(policy.rules, known_rules(policy, names))
    if problems:
        lines = [f"{source}: invalid policy"]
        for pattern, msg in problems:
            loc = ("rules", pattern)
            at = loc if data is own else _own_loc(loc, own, data)
            line = _line_of(root, at) if root is not None and at is not None else None
            lines.append(f"  {yaml_path(loc)}{f' (line {line})' if line else ''}: {msg}")
        raise PolicyError("\n".join(lines))


def _plugin_problems(policy: Policy) -> list[tuple[tuple[Any, ...], str]]:
    """Each plug-in imports and says what it reports; the refiner order names only refiners that are
    built in or plug-ins of this file (an SDK refiner not named runs last)."""
    out: list[tuple[tuple[Any, ...], str]] = []
    detectors, refiners = [], []
    for i, spec in enumerate(policy.plugins):
        try:
            obj = plugins.load(spec)
            if plugins.kind(obj) == "detector":
                plugins.with_taxonomy(policy, [obj])
                detectors.append(obj)
            else:
                plugins.refiner_order(policy.model_copy(update={"refiners": policy.refiners.model_copy(
                    update={"refiners": []})}), [*refiners, obj])
                refiners.append(obj)
        except plugins.PluginError as e:
            out.append((("plugins", i), str(e)))
    if not out:
        try:
            plugins.refiner_order(policy, refiners)
        except plugins.PluginError as e:
            bad = next((j for j, n in enumerate(policy.refiners.refiners) if repr(n) in str(e)), None)
            out.append((("refiners", "refiners", bad) if bad is not None else ("plugins",), str(e)))
    return out


def load_policy(name_or_path: str) -> Policy:
    path = str(_path_for(name_or_path).resolve())
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise PolicyError(f"{path}: cannot read policy: {e}") from e
    return _parsed(path, text)


# Keyed by the file's text, not its path: a file edited since (a hot reload, ops_reload.py) is parsed
# again. Reading a pack costs far less than parsing it; an mtime would miss two edits within its tick.
@lru_cache(maxsize=64)
def _parsed(path: str, text: str) -> Policy:
    return parse_policy(text, path)
