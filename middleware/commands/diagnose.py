"""Diagnose dialogues: one JSON line per {"messages", "tools"} file, all in one process."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from policies.loader import PolicyError, load_policy


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help='JSON with {"messages": [...], "tools": [...]} (OpenAI format); the last message may be a draft tool call')
    p.add_argument("--policy", default=None, help="policy name or YAML path (REIN_POLICY, default 'default')")
    p.add_argument("--middleware-model", default=None,
                   help="model for rein's LLM module (REIN_MIDDLEWARE_MODEL; default: the embedded model)")


def _load(path: str) -> tuple[list[Any], list[dict[str, Any]] | None]:
    from policies.messages import parse_messages

    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError('expected an object with a "messages" list')
    tools = data.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ValueError('"tools" must be a list')
    return parse_messages(data["messages"]), tools


async def diagnose_files(cascade: Any, files: list[str]) -> int:
    status = 0
    for path in files:
        try:
            messages, tools = _load(path)
        except (OSError, ValueError, ValidationError) as e:
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(json.dumps({"file": path, "error": f"cannot read: {detail}"}), flush=True)
            status = 1
            continue
        d = await cascade.diagnose(messages, tools)
        out = {"file": path, "errors": [e.model_dump() for e in d.errors], "plan": d.plan,
               "model_calls": d.model_calls}
        if d.notes:
            out["notes"] = d.notes
        print(json.dumps(out), flush=True)
    return status


def run(args: argparse.Namespace) -> int:
    import inception

    try:
        policy = load_policy(args.policy or os.environ.get("REIN_POLICY") or "default")
    except PolicyError as e:
        print(f"rein: {e}", file=sys.stderr)
        return 2
    model = None
    if policy.inception.enabled and policy.inception.llm:
        from middleware.models import resolve_model

        model = resolve_model(args.middleware_model or os.environ.get("REIN_MIDDLEWARE_MODEL"),
                              os.environ.get("REIN_MIDDLEWARE_API_KEY"))
    cascade = inception.build(policy, model)
    return asyncio.run(diagnose_files(cascade, args.files))
