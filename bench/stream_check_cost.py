"""What checking a streamed reply sentence by sentence costs (issue 20, defect 2): the CPU of a long
reply streamed through rein in small chunks with a tool result in the dialogue (checked), against the
same reply with nothing to check (streamed as it comes), and the longest /healthz waited meanwhile.

Three arms per reply length, in one process through the app in-process (no sockets):
  unchecked     no tool result: nothing to check, chunks pass through;
  checked       a tool result: checked up to the policy's max_revision_chars, the rest passed through;
  all checked   the same with max_revision_chars lifted: every sentence checked (the check's own slope).

    .venv/bin/python bench/stream_check_cost.py                       # 500, 2000 and 5000 sentences
    .venv/bin/python bench/stream_check_cost.py --sentences 2000 --chunk 8 --rounds 5
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from middleware.config import Settings  # noqa: E402
from middleware.engine import Engine  # noqa: E402
from middleware.models import ScriptedModel  # noqa: E402
from middleware.proxy import create_app  # noqa: E402
from policies.loader import load_policy  # noqa: E402

ORDER = {"order_id": "A1234", "status": "shipped", "total": 42.5, "placed": "2024-03-14",
         "items": [{"name": "Kettle", "price": 30.0}, {"name": "Mug", "price": 12.5}]}
SENTENCES = ["Your order A1234 was placed on March 14 for $42.50.",
             "Item {i} in the list is a kettle that costs $30.00 today.",
             "The parcel has shipped and should arrive within {d} days.",
             "Please reply here at any time and I will check it again."]


def reply(n: int) -> str:
    return " ".join(SENTENCES[i % 4].format(i=i, d=i % 9 + 2) for i in range(n))


def chunks(text: str, size: int) -> list[dict]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    out = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    out += [{**base, "choices": [{"index": 0, "delta": {"content": text[i:i + size]}, "finish_reason": None}]}
            for i in range(0, len(text), size)]
    return out + [{**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}]


def dialogue(with_tool: bool) -> list[dict]:
    messages = [{"role": "user", "content": "Where is my order A1234?"}]
    if with_tool:
        messages += [{"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": "get_order", "arguments": '{"order_id": "A1234"}'}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": json.dumps(ORDER)}]
    return messages


async def one(text: str, size: int, with_tool: bool, policy, probe: bool) -> tuple[float, float, float, dict]:
    """(CPU s, slowest probe's loop CPU ms, slowest probe's wall ms, trailer) of one streamed request."""
    app = create_app(Settings(policy="structural"), Engine(ScriptedModel([chunks(text, size)]), policy))
    transport = httpx.ASGITransport(app=app)
    cpu_stalls, wall_stalls = [], []
    async with httpx.AsyncClient(transport=transport, base_url="http://rein", timeout=600) as client:
        await client.get("/healthz")
        done = asyncio.Event()

        async def prober() -> None:
            while not done.is_set():
                cpu, wall = time.thread_time(), time.perf_counter()
                await asyncio.sleep(0.001)
                await client.get("/healthz")
                cpu_stalls.append((time.thread_time() - cpu) * 1000)
                wall_stalls.append((time.perf_counter() - wall - 0.001) * 1000)

        gc.collect()
        task = asyncio.create_task(prober()) if probe else None
        started = time.process_time()
        r = await client.post("/v1/chat/completions",
                              json={"model": "m", "messages": dialogue(with_tool), "stream": True})
        cpu = time.process_time() - started
        done.set()
        if task is not None:
            await task
    trailer = next((json.loads(line[len(": rein "):]) for line in r.text.splitlines() if line.startswith(": rein {")), {})
    return cpu, max(cpu_stalls, default=0.0), max(wall_stalls, default=0.0), trailer


async def main(args: argparse.Namespace) -> None:
    structural = load_policy("structural")
    lifted = structural.model_copy(update={"budgets": structural.budgets.model_copy(
        update={"max_revision_chars": 10**8})})
    arms = {"unchecked": (False, structural), "checked": (True, structural), "all checked": (True, lifted)}
    print(f"a reply of N sentences in {args.chunk}-character chunks through rein (policy structural, "
          f"max_revision_chars {structural.budgets.max_revision_chars}); CPU is the median of {args.rounds} "
          f"runs; load average {os.getloadavg()[0]:.2f} at start")
    print(f"\n  {'sentences':>9} {'KB':>5}  {'arm':<12}{'CPU ms':>9}{'x unchecked':>13}{'sentences checked':>19}"
          f"{'/healthz: loop CPU ms':>23}{'wall ms':>9}")
    for n in args.sentences:
        text = reply(n)
        base = None
        for arm, (with_tool, policy) in arms.items():
            cpus = [(await one(text, args.chunk, with_tool, policy, probe=False))[0] for _ in range(args.rounds)]
            _, stall_cpu, stall_wall, trailer = await one(text, args.chunk, with_tool, policy, probe=True)
            cpu = statistics.median(cpus)
            base = cpu if base is None else base
            checked = trailer.get("x-rein-sentences", "-")
            print(f"  {n:>9} {len(text) // 1024:>5}  {arm:<12}{cpu * 1000:>9.0f}{cpu / base:>12.2f}x{checked:>19}"
                  f"{stall_cpu:>23.1f}{stall_wall:>9.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=int, nargs="+", default=[500, 2000, 5000])
    parser.add_argument("--chunk", type=int, default=8, help="characters per streamed chunk")
    parser.add_argument("--rounds", type=int, default=3, help="runs per arm (the median CPU is shown)")
    asyncio.run(main(parser.parse_args()))
