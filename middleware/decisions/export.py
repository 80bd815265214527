"""From a wrong decision to a regression test: each decision marked wrong becomes a dialogue file
that ``rein diagnose`` and ``rein refine`` read (``{"messages", "tools"}``, plus ``"draft"`` for a
refinement), and all of them one corpus ``bench/real_dialogues.py --data`` reads
(``{"tools", "trajectories": [{"task_id", "trial", "reward", "traj"}]}``).

    rein decisions export --wrong ./regressions
    rein diagnose ./regressions/detect-ambiguous_request-vague_reference-3f2a….json
    python bench/real_dialogues.py --data ./regressions/trajectories.json
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from middleware.decisions.store import DecisionStore, Filters

CORPUS = "trajectories.json"


def file_name(decision: dict[str, Any]) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", decision["rule"]).strip("-") + f"-{decision['id']}.json"


def case_of(decision: dict[str, Any], dialogue: dict[str, Any]) -> dict[str, Any]:
    """The dialogue file for one decision: what rein read when it decided, and why it is here."""
    reply = dialogue.get("reply") or {}
    messages = list(dialogue["messages"])
    case: dict[str, Any] = {"messages": messages}
    if dialogue.get("tools"):
        case["tools"] = dialogue["tools"]
    if decision["stage"] == "refine" and reply.get("draft") is not None:
        case["draft"] = reply["draft"]                       # rein refine: the agent's text as drafted
    elif decision["stage"] == "action" and reply.get("drafted"):
        case["messages"] = messages + [reply["drafted"]]     # rein diagnose: the draft tool call last
    case["rein"] = {k: decision[k] for k in ("id", "rule", "mode", "stage", "policy", "tenant", "turn", "note")}
    case["rein"]["expected"] = "no finding: marked wrong by a reviewer"
    return case


def trajectory_of(decision: dict[str, Any], case: dict[str, Any], dialogue: dict[str, Any]) -> dict[str, Any]:
    reply = dialogue.get("reply") or {}
    if "draft" in case:
        last = [{"role": "assistant", "content": case["draft"]}]
    else:
        message = reply.get("drafted") or reply.get("message")
        last = [message] if message and decision["stage"] != "action" else []
    return {"task_id": decision["id"], "trial": 0, "reward": None, "rule": decision["rule"],
            "traj": case["messages"] + last}


def export_wrong(store: DecisionStore, out_dir: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """Write every decision marked wrong; (files written, decisions skipped with why)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written, skipped = [], []
    tools: dict[str, Any] = {}
    trajectories = []
    offset = 0
    while True:
        batch = store.page(Filters(verdict="wrong"), limit=200, offset=offset)
        if not batch:
            break
        offset += len(batch)
        for decision in batch:
            dialogue = store.dialogue(decision["request_id"])
            if dialogue is None:
                skipped.append(f"{decision['id']} ({decision['rule']}): logged without REIN_LOG_CONTENT=1, "
                               "no dialogue to export")
                continue
            case = case_of(decision, dialogue)
            path = out / file_name(decision)
            path.write_text(json.dumps(case, indent=1, ensure_ascii=False))
            written.append(path)
            for tool in case.get("tools") or []:
                tools.setdefault((tool.get("function") or {}).get("name") or json.dumps(tool), tool)
            trajectories.append(trajectory_of(decision, case, dialogue))
    if trajectories:
        corpus = out / CORPUS
        corpus.write_text(json.dumps({"tools": list(tools.values()), "trajectories": trajectories},
                                     indent=1, ensure_ascii=False))
        written.append(corpus)
    return written, skipped
