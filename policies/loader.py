"""Find and load policy packs by name (shipped) or path."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import ValidationError

from policies.schema import Policy

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


def format_errors(source: str, err: ValidationError) -> str:
    lines = [f"{source}: invalid policy"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {where}: {e['msg']}")
    return "\n".join(lines)


def load_policy(name_or_path: str) -> Policy:
    path = _path_for(name_or_path)
    return _load(str(path.resolve()))


@lru_cache(maxsize=64)
def _load(path: str) -> Policy:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise PolicyError(f"{path}: cannot read policy: {e}") from e
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: a policy is a YAML mapping")
    try:
        return Policy.model_validate(data)
    except ValidationError as e:
        raise PolicyError(format_errors(path, e)) from e
