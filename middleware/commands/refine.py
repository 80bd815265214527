"""Refine drafts: one JSON line per {"messages", "tools", "draft"} file, all in one process.

    rein refine --policy structural tests/data/refine/*.json
    {"file": "...", "final": "...", "changed": true, "refiners": [{"name": "factuality", "changed": true,
     "feedback": "fixed $45.00 → $42.50 (the tool result: total)"}], "model_calls": 0}

A file may also carry "profile" (a persona profile), "user" and "documents" (operator facts).
"""
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
                   help='JSON with {"messages": [...], "tools": [...], "draft": "the assistant\'s reply text"}')
    p.add_argument("--policy", default=None, help="policy name or YAML path (REIN_POLICY, default 'default')")
    p.add_argument("--middleware-model", default=None,
                   help="model for rein's refiner calls (REIN_MIDDLEWARE_MODEL; default: the embedded model)")


def load_case(path: str) -> tuple[Any, str]:
    """(TurnContext, draft) from a refine file; raises ValueError/ValidationError on bad input."""
    from policies.messages import parse_messages
    from refiners.base import TurnContext

    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or not isinstance(data.get("messages"), list):
        raise ValueError('expected an object with a "messages" list')
    if not isinstance(data.get("draft"), str):
        raise ValueError('"draft" must be the assistant\'s reply text')
    tools = data.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise ValueError('"tools" must be a list')
    ctx = TurnContext(messages=parse_messages(data["messages"]), tools=tools, user=data.get("user"),
                      profile=data.get("profile") if isinstance(data.get("profile"), dict) else None,
                      documents=[d for d in data.get("documents") or [] if isinstance(d, str)])
    return ctx, data["draft"]


async def refine_one(refinery: Any, ctx: Any, draft: str) -> dict[str, Any]:
    plan = await refinery.plan(ctx, draft)
    result = await refinery.refine(ctx, draft, plan)
    return {"final": result.final, "changed": result.changed,
            "refiners": [{"name": s.name, "changed": s.changed, "feedback": s.feedback} for s in result.steps],
            "model_calls": result.model_calls}


async def refine_files(refinery: Any, files: list[str]) -> int:
    status = 0
    for path in files:
        try:
            ctx, draft = load_case(path)
        except (OSError, ValueError, ValidationError) as e:
            detail = str(e).splitlines()[0] if str(e) else type(e).__name__
            print(json.dumps({"file": path, "error": f"cannot read: {detail}"}), flush=True)
            status = 1
            continue
        print(json.dumps({"file": path, **await refine_one(refinery, ctx, draft)}, ensure_ascii=False), flush=True)
    return status


def run(args: argparse.Namespace) -> int:
    import refiners

    try:
        policy = load_policy(args.policy or os.environ.get("REIN_POLICY") or "default")
    except PolicyError as e:
        print(f"rein: {e}", file=sys.stderr)
        return 2
    model = None
    if policy.refiners.enabled and policy.refiners.llm:  # the structural pass needs no model at all
        from middleware.models import resolve_model

        model = resolve_model(args.middleware_model or os.environ.get("REIN_MIDDLEWARE_MODEL"),
                              os.environ.get("REIN_MIDDLEWARE_API_KEY"))
    return asyncio.run(refine_files(refiners.build(policy, model), args.files))
