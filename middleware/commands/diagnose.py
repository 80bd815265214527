"""Diagnose dialogues: one JSON line per {"messages", "tools"} file, all in one process."""
from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from middleware.commands._files import add_common, each_readable, policy_and_model, read_dialogue


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE",
                   help='JSON with {"messages": [...], "tools": [...]} (OpenAI format); the last message may be a draft tool call')
    add_common(p, "rein's LLM module")


def _load(path: str) -> tuple[list[Any], list[dict[str, Any]] | None]:
    from policies.messages import parse_messages

    data = read_dialogue(path)
    return parse_messages(data["messages"]), data.get("tools")


async def diagnose_files(cascade: Any, files: list[str]) -> int:
    failed: list[str] = []
    for path, (messages, tools) in each_readable(files, _load, failed):
        d = await cascade.diagnose(messages, tools)
        out = {"file": path, "errors": [e.model_dump() for e in d.errors], "plan": d.plan,
               "model_calls": d.model_calls}
        if d.notes:
            out["notes"] = d.notes
        print(json.dumps(out), flush=True)
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    import inception

    chosen = policy_and_model(args, lambda p: p.inception.enabled and p.inception.llm)
    if chosen is None:
        return 2
    policy, model = chosen
    return asyncio.run(diagnose_files(inception.build(policy, model), args.files))
