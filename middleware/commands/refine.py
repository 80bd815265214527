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
from typing import Any

from middleware.commands._files import add_common, each_readable, policy_and_model, read_dialogue


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help='JSON with {"messages": [...], "tools": [...], "draft": "the assistant\'s reply text"}')
    add_common(p, "rein's refiner calls")


def load_case(path: str) -> tuple[Any, str]:
    """(TurnContext, draft) from a refine file; raises ValueError/ValidationError on bad input."""
    from policies.messages import parse_messages
    from refiners.base import TurnContext

    data = read_dialogue(path)
    if not isinstance(data.get("draft"), str):
        raise ValueError('"draft" must be the assistant\'s reply text')
    ctx = TurnContext(messages=parse_messages(data["messages"]), tools=data.get("tools"), user=data.get("user"),
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
    failed: list[str] = []
    for path, (ctx, draft) in each_readable(files, load_case, failed):
        print(json.dumps({"file": path, **await refine_one(refinery, ctx, draft)}, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    import refiners

    # The structural pass needs no model at all.
    chosen = policy_and_model(args, lambda p: p.refiners.enabled and p.refiners.llm)
    if chosen is None:
        return 2
    policy, model = chosen
    return asyncio.run(refine_files(refiners.build(policy, model), args.files))
