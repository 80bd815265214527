"""LangGraph's own floor: the CPU of running a bare ``StateGraph`` whose nodes do nothing, against
awaiting the same node functions in a plain loop, in one process (issue 24: a turn with work runs
rein's graph, so no such turn can cost rein less than this).

    python bench/graph_floor.py               # 1, 2 and 5 no-op nodes, a two-key state
    python bench/graph_floor.py --keys 31     # as many keys as rein's TurnState
    python bench/graph_floor.py --as-served   # eager tasks and nodes awaited inline, as rein serve runs (3.12+)
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from middleware.proxy.ops import eager_tasks  # noqa: E402


def state_type(keys: int) -> type:
    return TypedDict("S", {f"k{i}": int for i in range(keys)}, total=False)  # type: ignore[misc]


def build(nodes: int, keys: int) -> tuple[Any, list[Any]]:
    g = StateGraph(state_type(keys))
    fns, previous = [], START
    for i in range(nodes):
        async def node(state: dict[str, Any], i: int = i) -> dict[str, Any]:
            return {"k0": i}
        fns.append(node)
        g.add_node(f"n{i}", node)
        g.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    g.add_edge(previous, END)
    return g.compile(), fns


async def best_cpu(run: Any, runs: int, rounds: int) -> float:
    for _ in range(runs // 5):  # warm
        await run()
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(runs):
            await run()
        best = min(best, (time.process_time() - started) / runs * 1000)
    return best


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2, help="keys (channels) of the state")
    ap.add_argument("--runs", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--as-served", action="store_true",
                    help="eager tasks (3.12+) and LangGraph awaiting its nodes inline, as rein serve runs")
    args = ap.parse_args()
    served = args.as_served and eager_tasks.use(asyncio.get_running_loop())
    eager_tasks.inline_nodes(args.as_served)
    print(f"python {sys.version.split()[0]}; state of {args.keys} keys; best CPU of {args.rounds} rounds of "
          f"{args.runs} runs; {'as rein serve runs (eager tasks, nodes inline)' if served else 'plain asyncio'}; "
          f"load average {os.getloadavg()[0]:.2f}")
    for nodes in (1, 2, 5):
        graph, fns = build(nodes, args.keys)

        async def through_graph() -> None:
            await graph.ainvoke({"k0": 0})

        async def direct() -> None:
            state: dict[str, Any] = {"k0": 0}
            for fn in fns:
                state.update(await fn(state))

        g = await best_cpu(through_graph, args.runs, args.rounds)
        d = await best_cpu(direct, args.runs, args.rounds)
        print(f"  {nodes} no-op node(s): graph {g:.3f} ms a run, the same functions awaited {d * 1000:.1f} us "
              f"({g / max(d, 1e-9):.0f}x)")


if __name__ == "__main__":
    asyncio.run(main())
