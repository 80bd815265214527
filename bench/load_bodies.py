"""Realistic request bodies for bench/load.py: what an agent sends its model mid-dialogue.

- ``dev``: every prefix of every dev-set trajectory (../shared/data/tau-bench-airline/dev.json,
  read in place, never copied) that ends at a user message or right after a block of tool
  results, with the dev set's 14 tool definitions;
- ``generated``: seeded 5-30 message dialogues of a support agent with tools, 30% of whose tool
  results are failures (the structural detectors' and the inception plan's work).
"""
from __future__ import annotations

import random
from pathlib import Path

import orjson

DEV_SET = Path(__file__).resolve().parents[2] / "shared/data/tau-bench-airline/dev.json"

TOOLS = [{"type": "function", "function": {"name": name, "description": text, "parameters": {
    "type": "object", "properties": {arg: {"type": "string", "description": f"the {arg}"}}, "required": [arg]}}}
    for name, text, arg in (("get_order", "Look an order up by its id.", "order_id"),
                            ("cancel_order", "Cancel a pending order.", "order_id"),
                            ("get_user", "Look a user up by id.", "user_id"),
                            ("track_parcel", "Where a parcel is.", "tracking_id"))]
_FAILURES = ("Error: order not found", "Error: upstream service timed out, try again later",
             '{"error": "permission denied for this user"}', "Error: invalid order_id format")


def dev_bodies(path: Path = DEV_SET) -> list[bytes]:
    """The proxy bench's real request bodies: every prefix ending at a user turn or after tool results."""
    from body_overhead import request_bodies

    return request_bodies(path)


def generated_bodies(n: int = 500, seed: int = 14) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        target = rng.randint(5, 30)
        messages = [{"role": "system", "content": "You are the support agent of an online shop. Use the tools; be exact."},
                    {"role": "user", "content": f"Hi, I'm customer U{k:04d}. Where is my order A{1000 + k}?"}]
        call = 0
        while len(messages) < target - 1:
            if rng.random() < 0.6 and len(messages) < target - 2:
                call += 1
                tool = rng.choice(TOOLS)["function"]
                arg = next(iter(tool["parameters"]["properties"]))
                cid = f"call_{k}_{call}"
                messages.append({"role": "assistant", "content": None, "tool_calls": [{"id": cid, "type": "function",
                                 "function": {"name": tool["name"], "arguments": orjson.dumps({arg: f"A{1000 + k}"}).decode()}}]})
                result = rng.choice(_FAILURES) if rng.random() < 0.3 else orjson.dumps(
                    {"order_id": f"A{1000 + k}", "status": rng.choice(["pending", "shipped", "delivered"]),
                     "total": round(rng.uniform(5, 500), 2), "items": [{"name": "USB cable", "qty": 2}]}).decode()
                messages.append({"role": "tool", "tool_call_id": cid, "content": result})
            else:
                messages.append({"role": "assistant", "content": "Your order is on its way; it should arrive on Friday."})
                messages.append({"role": "user", "content": rng.choice(["And the other one?", "Please cancel it.",
                                                                        "Thanks. Can you check the total?"])})
        out.append(orjson.dumps({"model": "gpt-load", "messages": messages, "tools": TOOLS}))
    return out


def bodies(kind: str) -> list[bytes]:
    return dev_bodies() if kind == "dev" else generated_bodies()
