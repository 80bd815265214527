"""What LangGraph costs a turn with work, in process: event-loop passes and CPU per graph node,
against the same stages walked directly (issue 24: under load each loop pass waits behind every
other request's work, so passes, not CPU alone, make rein's own-time tail).

The turns are the dev set's request bodies whose clean path hands over to the graph (a plan to
plant, a held call to re-ask...), each answered by its trajectory's recorded reply (the fake
upstream's answer where none was recorded), as ``bench/load.py --bodies dev --replay`` serves them.
Each turn runs alone on a plain asyncio loop, three ways, interleaved in the same process:

- ``graph``:  ``Pipeline.run`` (the clean path, then the compiled graph from the stage with work);
- ``stream``: ``Pipeline.events`` (the same, streamed: the graph's ``astream``);
- ``direct``: the same stages called directly, asking the same routers (no LangGraph).

A pass is one loop iteration while the turn is pending (a ticker re-scheduling itself with
``call_soon``); the agent answers on the next pass, as an HTTP upstream's answer arrives on a later
pass than the call (``--suspend 0``: at once), so the direct walk's passes are the agent's own and
the graph's passes beyond them are rein's own time: under load each waits behind the other
requests' work. CPU is ``process_time``,
each turn's best of --rounds rounds, summed; calls (``sys.setprofile``: Python and C functions
called) are CPU's proxy that a busy machine does not move.

    python bench/load_graph.py                      # structural, every turn with work
    python bench/load_graph.py --policy default --rounds 9
    python bench/load_graph.py --data ../shared/data/agentdojo-dev/dev.json --eager --inline
    python bench/load_graph.py --why                # the tasks a graph turn starts, by coroutine
    python bench/load_graph.py --concurrency 50     # every dev turn at c=50: own time p50/p99, graph vs direct
    python3.12 bench/load_graph.py --eager          # as rein serve runs on 3.12 (middleware/proxy/ops/eager_tasks.py)

On 3.12 with eager tasks a node that finishes without waiting costs no pass, but one that waits
(the agent) hands its result back through its task (LangGraph's ``RunnableSeq`` runs each node in
one): one pass of rein's own time per agent call, which ``--suspend 0`` hides; ``--inline``: LangGraph
awaits its nodes inline, as ``rein serve`` does (REIN_INLINE_NODES=0 turns it off; middleware/proxy/ops/eager_tasks.py).
"""
from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests")]

from langgraph.graph import END, START  # noqa: E402

from body_overhead import _key  # noqa: E402
from load_bodies import DEV_SET, dev_bodies  # noqa: E402
from middleware.engine import Engine  # noqa: E402
from middleware.models.testing import FunctionModel  # noqa: E402
from middleware.pipeline import graph, stream  # noqa: E402
from middleware.pipeline.clean_path import clean_path  # noqa: E402
from middleware.proxy.ops import eager_tasks
from middleware.proxy.ops.loop_probe import loop_passes  # noqa: E402
from middleware.proxy.routes.chat import model_request  # noqa: E402
from middleware.proxy.routes.validate import parse_body  # noqa: E402
from middleware.state import merge  # noqa: E402

EAGER = False  # --eager
REPLY: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("reply")  # the turn's agent reply


def recorded_replies(path: Path = DEV_SET) -> dict[bytes, dict[str, Any]]:
    data = orjson.loads(path.read_bytes())
    out = {}
    for trajectory in data["trajectories"]:
        traj = trajectory["traj"]
        for i in range(len(traj) - 1):
            if traj[i + 1].get("role") == "assistant":
                out[_key(traj[: i + 1])] = {k: v for k, v in traj[i + 1].items() if k in ("role", "content", "tool_calls")}
    return out


def next_step(p: Any, state: dict[str, Any], step: str) -> str:
    """The stage after ``step``, as the graph's edges say."""
    if step in graph.ROUTED:
        router, targets = graph.ROUTED[step]
        return router(p, state)
    return graph.routes.FIXED[step]


async def direct(p: Any, request: Any, streamed: bool, sink: list, walked: list | None = None) -> dict[str, Any]:
    """The turn with every stage called directly (the clean path, then on through the routers);
    ``walked`` gets the stages after the clean path's."""
    state: dict[str, Any] = dict(p.initial(request, streamed))
    stream.set_writer(sink.append)
    step = await clean_path(p, state)
    while step != END:
        if walked is not None:
            walked.append(step)
        merge(state, await graph.STAGES[step](p, state))
        step = next_step(p, state, step)
    return state


async def via_graph(p: Any, request: Any, streamed: bool, sink: list) -> dict[str, Any]:
    if not streamed:
        return await p.run(request)
    async for kind, item in p.events(request):
        if kind == "chunk":
            sink.append(item)
        elif kind == "state":
            return item
    raise RuntimeError("no state")


def turns(policy: str, agent: FunctionModel, path: Path = DEV_SET) -> tuple[Any, list[tuple[Any, dict[str, Any], list[str]]]]:
    """The pipeline and every dev turn: (request, the agent's reply, the stages the graph runs: none
    for a clean turn)."""
    from fake_upstream import answer

    p = Engine(agent, policy).pipeline()
    recorded = recorded_replies(path)
    out = []

    async def walk_all() -> None:
        for raw in dev_bodies(path):
            data, req = parse_body(raw)
            reply = recorded.get(_key(data["messages"])) or answer(data)
            request = model_request(data, req, {})
            token = REPLY.set(reply)
            walked: list[str] = []
            await direct(p, request, False, [], walked)
            REPLY.reset(token)
            out.append((request, reply, walked))

    asyncio.run(walk_all())
    return p, out


async def passes(work) -> int:
    """Loop iterations while ``work`` is pending."""
    if EAGER:
        eager_tasks.use(asyncio.get_running_loop())
    return (await loop_passes(work))[1]


WAYS = {"graph": (via_graph, False), "stream": (via_graph, True), "direct": (direct, False),
        "direct stream": (direct, True)}


async def measure(p: Any, work: list, rounds: int) -> dict[str, dict[str, float]]:
    """Passes a turn, and each turn's best CPU over the rounds (collections off while timing:
    a collection lands on whichever turn is running)."""
    best = {w: [float("inf")] * len(work) for w in WAYS}
    count = dict.fromkeys(WAYS, 0)
    for r in range(rounds):
        for way, (fn, streamed) in WAYS.items():
            gc.collect()
            gc.disable()
            try:
                total = 0
                for i, (request, reply, _) in enumerate(work):
                    REPLY.set(reply)
                    t0 = time.process_time()
                    total += await passes(fn(p, request, streamed, []))
                    best[way][i] = min(best[way][i], time.process_time() - t0)
            finally:
                gc.enable()
            count[way] = total
    calls = {w: await python_calls(p, work, *WAYS[w]) for w in WAYS}
    return {w: {"passes": count[w], "cpu": sum(best[w]), "calls": calls[w]} for w in WAYS}


async def python_calls(p: Any, work: list, fn: Any, streamed: bool) -> int:
    """Function calls (Python and C) the turns make: CPU's steady proxy on a shared machine."""
    n = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal n
        if event in ("call", "c_call"):
            n += 1

    for request, reply, _ in work:
        REPLY.set(reply)
        sys.setprofile(count)
        try:
            await fn(p, request, streamed, [])
        finally:
            sys.setprofile(None)
    return n


async def why(p: Any, work: list) -> Counter:
    """The tasks the graph turns start, by the coroutine each runs."""
    started: Counter = Counter()
    loop = asyncio.get_running_loop()

    def factory(loop, coro, **kw):
        started[getattr(coro, "__qualname__", type(coro).__name__)] += 1
        return asyncio.Task(coro, loop=loop, **kw)

    loop.set_task_factory(factory)
    try:
        for request, reply, _ in work:
            REPLY.set(reply)
            await via_graph(p, request, False, [])
    finally:
        loop.set_task_factory(None)
    return started


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="structural")
    ap.add_argument("--data", type=Path, default=DEV_SET, help="a trajectory file (default: the airline dev set)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--why", action="store_true", help="count the tasks a graph turn starts, by coroutine")
    ap.add_argument("--concurrency", type=int, default=0,
                    help="instead: every dev turn (clean or not) at this concurrency, through the pipeline and walked "
                         "directly, interleaved; rein's own time (wall less the agent's wait) p50/p99 and turns/s")
    ap.add_argument("--eager", action="store_true", help="Python 3.12+: eager tasks, as rein serve runs there")
    ap.add_argument("--inline", action="store_true",
                    help="LangGraph awaits its nodes inline, as rein serve does")
    ap.add_argument("--requests", type=int, default=3000, help="with --concurrency: turns per way and round")
    ap.add_argument("--upstream-ms", type=float, default=5.0, help="with --concurrency: the agent's answer time")
    ap.add_argument("--suspend", type=int, default=1,
                    help="without --concurrency: loop passes the agent waits before answering (0: at once)")
    args = ap.parse_args(argv)
    global EAGER
    EAGER = args.eager and eager_tasks.available()
    if args.eager and not EAGER:
        print(f"no eager tasks on Python {sys.version.split()[0]}")
    eager_tasks.inline_nodes(args.inline)
    wait = args.upstream_ms if args.concurrency else 0  # the passes and CPU of a turn alone: answered at once
    def answer(request: Any) -> Any:
        if wait:
            return _later(REPLY.get(), wait)
        return _after_passes(REPLY.get(), args.suspend) if args.suspend else REPLY.get()

    agent = FunctionModel(answer)
    p, every = turns(args.policy, agent, args.data)
    if args.concurrency:
        return asyncio.run(under_load(p, every, args))
    work = [t for t in every if t[2]]
    nodes = sum(len(w) for _, _, w in work)
    shapes = Counter(" > ".join(w) for _, _, w in work)
    print(f"python {sys.version.split()[0]}{' eager tasks' if EAGER else ''}{', nodes inline' if args.inline else ''}; policy {args.policy}: {len(work)} dev turns with work, {nodes} graph nodes "
          f"({nodes / max(len(work), 1):.1f} a turn); best CPU of {args.rounds} rounds a turn; {time.strftime('%H:%M:%S')}")
    for shape, n in shapes.most_common(4):
        print(f"  {n:4d}x {shape}")
    if args.why:
        started = asyncio.run(why(p, work))
        print(f"tasks started by {len(work)} graph turns ({sum(started.values()) / nodes:.1f} a node):")
        for name, n in started.most_common():
            print(f"  {n / nodes:5.2f} a node  {name}")
        return 0
    res = asyncio.run(measure(p, work, args.rounds))
    for way in WAYS:
        r = res[way]
        print(f"{way:<14} loop passes {r['passes'] / len(work):6.1f} a turn  CPU {r['cpu'] * 1000 / len(work):7.3f} ms, "
              f"{r['calls'] / len(work):6.0f} calls a turn")
    for way, base in (("graph", "direct"), ("stream", "direct stream")):
        g, d = res[way], res[base]
        more = g["passes"] - d["passes"]  # the direct walk's passes are the agent's own
        print(f"{way} vs {base}: passes {more / len(work):.1f} a turn more (rein's own time), {more / nodes:.1f} a node; CPU "
              f"{(g['cpu'] - d['cpu']) * 1e6 / nodes:.0f} us a node more, {g['cpu'] / d['cpu']:.2f}x the direct walk; "
              f"calls {(g['calls'] - d['calls']) / nodes:.0f} a node more, {g['calls'] / d['calls']:.2f}x")
    return 0


async def _after_passes(reply: dict[str, Any], n: int) -> dict[str, Any]:
    """The reply ``n`` loop passes later: an upstream's answer arrives on a later pass than its call."""
    for _ in range(n):
        await asyncio.sleep(0)
    return reply


async def _later(reply: dict[str, Any], ms: float) -> dict[str, Any]:
    await asyncio.sleep(ms / 1000)
    return reply


async def under_load(p: Any, every: list, args: argparse.Namespace) -> int:
    """Every dev turn at --concurrency, through ``Pipeline.run`` and walked directly, two rounds
    each, interleaved: own time is what rein's turns wait on the loop as much as their CPU."""
    def pct(xs: list[float], q: float) -> float:
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q / 100 * len(xs)))]

    async def drive(fn: Any) -> tuple[list[float], list[float], float]:
        own, graphed = [], []
        turns = iter(range(args.requests))

        async def worker() -> None:
            for i in turns:
                request, reply, walked = every[i % len(every)]
                REPLY.set(reply)
                t0 = time.perf_counter()
                state = await fn(p, request, False, [])
                ms = (time.perf_counter() - t0) * 1000 - state.get("upstream_ms", 0.0)
                (graphed if walked else own).append(ms)

        if EAGER:
            eager_tasks.use(asyncio.get_running_loop())
        t0 = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(args.concurrency)])
        return own, graphed, args.requests / (time.perf_counter() - t0)

    with_work = sum(1 for t in every if t[2])
    print(f"python {sys.version.split()[0]}{' eager tasks' if EAGER else ''}; policy {args.policy}; {len(every)} dev turns ({with_work} with work); "
          f"{args.requests} turns a round at concurrency {args.concurrency}, agent answers in {args.upstream_ms:g} ms; "
          f"load {os.getloadavg()[0]:.2f}")
    for r in range(2):
        for way, fn in (("graph", via_graph), ("direct", direct)):
            gc.collect()
            clean, graphed, rate = await drive(fn)
            both = clean + graphed
            print(f"round {r + 1} {way:<7} {rate:6.0f} turns/s; own p50 {pct(both, 50):6.2f} p99 {pct(both, 99):7.2f} ms; "
                  f"turns with work p50 {pct(graphed, 50):6.2f} p99 {pct(graphed, 99):7.2f} ms; clean turns p99 "
                  f"{pct(clean, 99):7.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
