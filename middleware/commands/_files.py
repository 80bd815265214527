"""What `rein diagnose` and `rein refine` share: the policy and model they run with, and reading
many files in one process (one JSON line each; an unreadable file gets a line saying why)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import ValidationError

from policies.loader import PolicyError, load_policy
from policies.schema import Policy


def add_common(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--policy", default=None, help="policy name or YAML path (REIN_POLICY, default 'default')")
    p.add_argument("--middleware-model", default=None,
                   help=f"model for {what}: a URL, a litellm model or 'local' (REIN_MIDDLEWARE_MODEL); "
                        "unset: the policy runs its rules only")


def policy_and_model(args: argparse.Namespace, wants_model: Callable[[Policy], bool]) -> tuple[Policy, Any] | None:
    """The policy named by the flags (None after printing why it cannot load) and rein's model,
    resolved only when the policy will call it and the operator named one: rein's prompts go
    only where the operator said (a policy that wants a model runs its rules only, and says so)."""
    try:
        policy = load_policy(args.policy or os.environ.get("REIN_POLICY") or "default")
    except PolicyError as e:
        print(f"rein: {e}", file=sys.stderr)
        return None
    model = None
    spec = args.middleware_model or os.environ.get("REIN_MIDDLEWARE_MODEL")
    if wants_model(policy) and spec:
        from middleware.models import resolve_model

        model = resolve_model(spec, os.environ.get("REIN_MIDDLEWARE_API_KEY"))
    elif wants_model(policy):
        print(f"rein: policy {policy.name!r} runs its rules only: no --middleware-model named", file=sys.stderr)
    return policy, model


def read_dialogue(path: str) -> dict[str, Any]:
    """A JSON object with a "messages" list and, if any, a "tools" list (ValueError otherwise)."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError('expected an object with a "messages" list')
    if data.get("tools") is not None and not isinstance(data["tools"], list):
        raise ValueError('"tools" must be a list')
    return data


def each_readable(files: list[str], load: Callable[[str], Any], failed: list[str]) -> Iterator[tuple[str, Any]]:
    """(path, loaded) per file; an unreadable one prints its error line and lands in ``failed``."""
    for path in files:
        try:
            loaded = load(path)
        except (OSError, ValueError, ValidationError) as e:
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(json.dumps({"file": path, "error": f"cannot read: {detail}"}), flush=True)
            failed.append(path)
            continue
        yield path, loaded
