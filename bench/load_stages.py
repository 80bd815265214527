"""Where rein's own time goes, request by request, one body at a time (issue 24).

Starts the replay upstream (the recorded replies, as ``proxy_overhead.py --bodies --replay``) and one
``rein serve --policy P`` whose process wraps, with timers, what a request runs: the body's read
(parse and validation), the request mapping, each stage (called on the clean path or as a graph
node), the upstream call, the read ahead; and records every collection that runs inside a request
(``gc.callbacks``). Then sends each request body of the corpus in turn and prints rein's own time
(``x-rein-overhead-ms``) and, for the N slowest requests, each cause with its mean and share:

- ``graph machinery``: a turn handed to the LangGraph graph, its run less the stages it ran;
- ``read ahead``: the refiners' and action checks' reading while the agent wrote (counted in rein's
  time when the answer came soon after it: middleware/pipeline/read_ahead.py);
- ``agent (glue)``: the agent stage less the agent's call (upstream wait, not rein's time; the read
  ahead runs inside it and is its own line);
- ``collections gen N``: time inside the request (already part of the stage it interrupted).

The timers cost a few microseconds a span: figures for finding causes, not for quoting.

    python bench/load_stages.py                          # structural, airline dev, 40 slowest
    python bench/load_stages.py --policy default --slowest 20 --bodies PATH
    python bench/load_stages.py --only clean              # the slowest of the turns no stage handed over
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from body_overhead import request_bodies  # noqa: E402
from proxy_overhead import DEV_SET, ROOT, child_env, free_port, fresh_session, one, pct, start, stop_all, wait_ready  # noqa: E402

STAGES = ("diagnose", "incept", "agent", "check_actions", "recheck", "resolve", "plan_refine", "refine", "respond")


# ---- the served process ---------------------------------------------------------------------------
def serve_probed(argv: list[str], out: str, expected: int) -> int:
    """``rein serve argv`` with the timers; the records go to ``out`` once ``expected`` requests were served."""
    import functools
    import gc
    import inspect

    from middleware import pipeline
    from middleware.cli import main
    from middleware.models import instrumented
    from middleware.pipeline import graph, read_ahead, stages
    from middleware.proxy.routes import chat, route

    records: list[dict[str, Any]] = []
    now: list[Any] = [None]  # the request in flight (one at a time)

    def timed(name: str, fn: Any) -> Any:
        def note(t0: float) -> None:
            if now[0] is not None:
                now[0]["spans"].append((name, (time.perf_counter() - t0) * 1000))

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def wrapped_async(*a: Any, **k: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return await fn(*a, **k)
                finally:
                    note(t0)
            return wrapped_async

        @functools.wraps(fn)
        def wrapped(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                note(t0)
        return wrapped

    for name in ("diagnose", "agent", "check_actions", "plan_refine", "respond"):  # the clean path's calls
        setattr(stages, name, timed(f"stage {name}", getattr(stages, name)))
    for name, fn in list(graph.STAGES.items()):  # the graph's nodes (compiled when the engine is built)
        graph.STAGES[name] = timed(f"stage {name}", fn)
    chat.ChatRoute.read = timed("read", chat.ChatRoute.read)
    chat.ChatRoute.parse = timed("parse", chat.ChatRoute.parse)
    chat.ChatRoute.render = timed("render", chat.ChatRoute.render)
    instrumented.Instrumented.complete = timed("agent call", instrumented.Instrumented.complete)
    read_ahead._read_ahead = timed("read ahead", read_ahead._read_ahead)
    pipeline.Pipeline.run = timed("run", pipeline.Pipeline.run)
    at = graph.TurnGraph.at

    def entered(self: Any, state: Any) -> Any:
        if now[0] is not None:
            now[0]["graph"] = state.get("resume") or "diagnose"
        return at(self, state)

    graph.TurnGraph.at = entered
    serve = route.Route._serve

    async def served(self: Any, request: Any) -> Any:
        now[0] = {"t0": time.perf_counter(), "spans": [], "gc": []}
        response = await serve(self, request)
        record, now[0] = now[0], None
        record["own"] = float(response.headers.get("x-rein-overhead-ms", "nan"))
        del record["t0"]
        records.append(record)
        if len(records) == expected:
            Path(out).write_bytes(orjson.dumps(records))
        return response

    route.Route._serve = served
    started = [0.0]

    def collected(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        elif now[0] is not None:
            now[0]["gc"].append((info["generation"], (time.perf_counter() - started[0]) * 1000))

    gc.callbacks.append(collected)
    return main(argv)


# ---- the driver ----------------------------------------------------------------------------------
async def drive(args: argparse.Namespace) -> list[dict[str, Any]]:
    bodies = request_bodies(args.bodies)
    warm = bodies[: args.warmup]
    up_port, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    out = Path(tempfile.mkdtemp(prefix="rein-stages-")) / "records.json"
    env = {**child_env(), "REIN_STAGES_OUT": str(out), "REIN_STAGES_EXPECTED": str(len(warm) + len(bodies))}
    procs = {"upstream": start(["bench/proxy_overhead.py", "--serve-replay", str(up_port), "--bodies", str(args.bodies)]),
             "rein": subprocess.Popen([sys.executable, "bench/load_stages.py", "--serve-probed", "serve", "--port", str(port),
                                       "--upstream", upstream, "--policy", args.policy, "--log-level", "warning"],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)}
    try:
        async with fresh_session() as session:
            await wait_ready(session, upstream + "/models", procs["upstream"])
            await wait_ready(session, f"http://127.0.0.1:{port}/healthz", procs["rein"])
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            for body in [*warm, *bodies]:
                await one(session, url, body, False)
                await asyncio.sleep(args.gap_ms / 1000)  # the idle moment a client leaves between requests
        deadline = time.monotonic() + 10
        while not out.exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        records = orjson.loads(out.read_bytes())[len(warm):]
    finally:
        stop_all(procs.values())
    for record, body in zip(records, bodies):
        record["kb"] = len(body) / 1024
    return records


def causes(record: dict[str, Any]) -> dict[str, float]:
    """One request's time by cause, ms (collections are inside the stage they interrupted)."""
    spans: dict[str, float] = collections.defaultdict(float)
    for name, ms in record["spans"]:
        spans[name] += ms
    staged = sum(v for k, v in spans.items() if k.startswith("stage "))
    out = {"read (parse, validate)": spans["read"], "request mapping": spans["parse"],
           "read ahead": spans["read ahead"],
           "graph machinery" if record.get("graph") else "clean path glue": spans["run"] - staged,
           "render": spans["render"]}
    for name in STAGES:
        if name == "agent":
            out["stage agent (glue)"] = spans["stage agent"] - spans["agent call"]  # the call is not rein's time
        elif spans.get(f"stage {name}"):
            out[f"stage {name}"] = spans[f"stage {name}"]
    for generation, ms in record["gc"]:
        out[f"collections gen {generation} (inside stages)"] = out.get(f"collections gen {generation} (inside stages)", 0.0) + ms
    out["unaccounted"] = record["own"] - sum(v for k, v in out.items() if not k.startswith("collections"))
    return out


def report(records: list[dict[str, Any]], slowest: int, policy: str, only: str = "all") -> None:
    own = [r["own"] for r in records]
    graph = [r for r in records if r.get("graph")]
    print(f"{len(records)} requests through {policy}, one at a time; load average {os.getloadavg()[0]:.2f}")
    print(f"  rein's own time: p50 {pct(own, 0.5):.2f}  p99 {pct(own, 0.99):.2f}  max {max(own):.2f} ms")
    kinds = collections.Counter(r.get("graph") or "clean path" for r in records)
    for kind, n in kinds.most_common():
        xs = [r["own"] for r in records if (r.get("graph") or "clean path") == kind]
        print(f"  {kind:<12} {n:>5} requests: p50 {pct(xs, 0.5):.2f}  p99 {pct(xs, 0.99):.2f}  max {max(xs):.2f} ms")
    inside = collections.Counter(g for r in records for g, _ in r["gc"])
    print(f"  collections inside requests: {dict(sorted(inside.items())) or 'none'}; graph turns {len(graph)}")
    pool = [r for r in records if only == "all" or (only == "graph") == bool(r.get("graph"))]
    worst = sorted(pool, key=lambda r: -r["own"])[:slowest]
    total = sum(r["own"] for r in worst)
    sums: dict[str, float] = collections.defaultdict(float)
    seen: collections.Counter[str] = collections.Counter()
    for r in worst:
        for name, ms in causes(r).items():
            sums[name] += ms
            seen[name] += ms > 0.05
    print(f"\n  the {len(worst)} slowest{'' if only == 'all' else ' ' + only + ' path'} (own {worst[-1]['own']:.2f}-{worst[0]['own']:.2f} ms, "
          f"{sum(r['kb'] for r in worst) / len(worst):.0f} KB on average): each cause's mean, share, and in how many")
    for name, ms in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"    {name:<38}{ms / len(worst):>7.2f} ms  {ms / total * 100:>4.0f}%  in {seen[name]:>3} of {len(worst)}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-probed":
        sys.exit(serve_probed(sys.argv[2:], os.environ["REIN_STAGES_OUT"], int(os.environ["REIN_STAGES_EXPECTED"])))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--policy", default="structural")
    p.add_argument("--bodies", type=Path, default=DEV_SET, help=f"a trajectory file (default {DEV_SET})")
    p.add_argument("--slowest", type=int, default=40)
    p.add_argument("--warmup", type=int, default=20, help="bodies sent first and left out")
    p.add_argument("--only", choices=("all", "clean", "graph"), default="all",
                   help="the slowest among all requests, or only those on the clean path / through the graph")
    p.add_argument("--gap-ms", type=float, default=1.0, help="idle time between requests")
    args = p.parse_args()
    report(asyncio.run(drive(args)), args.slowest, args.policy, args.only)


if __name__ == "__main__":
    main()
