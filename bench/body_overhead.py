"""proxy_overhead --bodies [--replay]: rein's own time on every real request body of a trajectory file
(issue 9), against an upstream that answers with the recorded replies or the fake upstream."""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import (one, DEV_SET, NONE_REPLY, ROOT, child_env, free_port, fresh_session, pct,  # noqa: F401
                            start, stop_all, wait_ready)


def _key(messages: list[dict]) -> bytes:
    """A dialogue without the think traces rein plants (a call to ``think`` and its result)."""
    think = {c.get("id") for m in messages for c in m.get("tool_calls") or []
             if (c.get("function") or {}).get("name") == "think"}
    kept = [m for m in messages if not (m.get("tool_call_id") in think or
                                        any(c.get("id") in think for c in m.get("tool_calls") or []))]
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)


def serve_replay(port: int, path: Path) -> None:
    """An upstream that answers each request body with the reply its trajectory recorded (the fake
    upstream's answer for a dialogue it does not know)."""
    from aiohttp import web
    from fake_upstream import completion

    data = orjson.loads(path.read_bytes())
    recorded = {}
    for trajectory in data["trajectories"]:
        traj = trajectory["traj"]
        for i in range(len(traj) - 1):
            if traj[i + 1].get("role") == "assistant":
                reply = {k: v for k, v in traj[i + 1].items() if k in ("role", "content", "tool_calls")}
                recorded[_key(traj[: i + 1])] = reply

    async def chat(request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        reply = recorded.get(_key(body.get("messages") or []))
        if reply is None:
            return web.Response(body=orjson.dumps(completion(body)), content_type="application/json")
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        return web.Response(body=orjson.dumps({
            "id": "chatcmpl-replay", "object": "chat.completion", "created": 0, "model": "replay",
            "choices": [{"index": 0, "message": reply, "finish_reason": finish}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}), content_type="application/json")

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "replay", "object": "model"}]})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def request_bodies(path: Path) -> list[bytes]:
    """Every prefix of every trajectory that ends at a user message or right after a block of tool
    results: the requests an agent sends its model in that dialogue."""
    data = orjson.loads(path.read_bytes())
    tools = data.get("tools")
    out = []
    for trajectory in data["trajectories"]:
        traj = trajectory["traj"]
        for i, m in enumerate(traj):
            after_tools = m.get("role") == "tool" and (i + 1 == len(traj) or traj[i + 1].get("role") != "tool")
            if m.get("role") == "user" or after_tools:
                body = {"model": "gpt-bench", "messages": traj[: i + 1]}
                if tools:
                    body["tools"] = tools
                out.append(orjson.dumps(body))
    return out


BUCKETS = ((0, 8), (8, 16), (16, 24), (24, 32), (32, 10**6))  # body size, KB


async def replay(args: argparse.Namespace) -> None:
    bodies = request_bodies(args.bodies)
    up_port, none_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    none_url = f"http://127.0.0.1:{none_port}/v1"
    policies = ("passthrough", "structural", "default")
    upstream_cmd = (["bench/proxy_overhead.py", "--serve-replay", str(up_port), "--bodies", str(args.bodies)]
                    if args.replay else ["tests/fake_upstream.py", "--port", str(up_port)])
    procs = {"upstream": start(upstream_cmd),
             "none": start(["bench/proxy_overhead.py", "--serve-none", str(none_port)])}
    ports = {p: free_port() for p in policies}
    for p in policies:
        extra = ["--middleware-model", none_url] if p == "default" else []
        procs[p] = start(["-m", "middleware.cli", "serve", "--port", str(ports[p]), "--upstream", upstream,
                          "--policy", p, "--log-level", "warning", *extra])
    try:
        async with fresh_session() as session:
            await wait_ready(session, upstream + "/models", procs["upstream"])
            await wait_ready(session, none_url + "/models", procs["none"])
            for p in policies:
                await wait_ready(session, f"http://127.0.0.1:{ports[p]}/healthz", procs[p])
            urls = {p: f"http://127.0.0.1:{ports[p]}/v1/chat/completions" for p in policies}
            sizes = sorted(len(b) for b in bodies)
            print(f"{len(bodies)} request bodies from {args.bodies} ({sizes[0] / 1024:.1f}-{sizes[-1] / 1024:.1f} KB, "
                  f"median {sizes[len(sizes) // 2] / 1024:.1f} KB), each through every policy in turn, upstream: "
                  f"{'the recorded replies' if args.replay else 'tests/fake_upstream.py'}; "
                  f"load average {os.getloadavg()[0]:.2f} at start")
            for body in bodies[:20]:  # warm-up: connections, caches, first-call imports
                for url in urls.values():
                    await one(session, url, body, False)
            own: dict[str, list[float]] = {p: [] for p in policies}
            calls: list[int] = []  # rein's model calls (default) per body
            for body in bodies:
                for p, url in urls.items():
                    before = await none_calls(session, none_url) if p == "default" else 0
                    got: list[float] = []
                    await one(session, url, body, False, got)
                    own[p].append(got[0] if got else float("nan"))
                    if p == "default":
                        calls.append(await none_calls(session, none_url) - before)
        report_bodies(bodies, own, calls)
    finally:
        stop_all(procs.values())


async def none_calls(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url + "/models") as r:
        return (await r.json())["calls"]


def report_bodies(bodies: list[bytes], own: dict[str, list[float]], calls: list[int]) -> None:
    quiet = [i for i, c in enumerate(calls) if c == 0]
    columns = {"passthrough": own["passthrough"], "structural": own["structural"], "default": own["default"],
               "default, no model call": [own["default"][i] for i in quiet]}
    print(f"\nrein's own time (x-rein-overhead-ms), ms; default made a model call on "
          f"{len(bodies) - len(quiet)} of {len(bodies)} bodies")
    print(f"  {'policy':<24}{'n':>6}{'p50':>9}{'p99':>9}{'max':>9}")
    for name, xs in columns.items():
        if xs:
            print(f"  {name:<24}{len(xs):>6}{pct(xs, 0.5):>9.2f}{pct(xs, 0.99):>9.2f}{max(xs):>9.2f}")
    print(f"\n  by body size: p50 / p99 per policy")
    print(f"  {'KB':<10}{'n':>6}" + "".join(f"{p:>20}" for p in own))
    for lo, hi in BUCKETS:
        idx = [i for i, b in enumerate(bodies) if lo * 1024 <= len(b) < hi * 1024]
        if idx:
            label = f"{lo}-{hi}" if hi < 10**6 else f">={lo}"
            cells = "".join(f"{pct([own[p][i] for i in idx], 0.5):>10.2f}/{pct([own[p][i] for i in idx], 0.99):<9.2f}"
                            for p in own)
            print(f"  {label:<10}{len(idx):>6}{cells}")
    s50, s99 = pct(own["structural"], 0.5), pct(own["structural"], 0.99)
    d50 = pct(columns["default, no model call"], 0.5) if quiet else float("nan")
    d99 = pct(columns["default, no model call"], 0.99) if quiet else float("nan")
    verdicts = [(s50 <= 1.5, f"structural own p50 {s50:.2f} ms <= 1.5 ms"),
                (s99 <= 4.0, f"structural own p99 {s99:.2f} ms <= 4 ms"),
                (d50 - s50 <= 1.0, f"default (no model call) own p50 {d50:.2f} ms within 1 ms of structural"),
                (d99 - s99 <= 1.0, f"default (no model call) own p99 {d99:.2f} ms within 1 ms of structural")]
    print("\ntargets (issue 9)" + "".join(f"\n  {'met   ' if ok else 'MISSED'} {text}" for ok, text in verdicts))
    smax = max(own["structural"])
    tail = [(s50 <= 0.5, f"structural own p50 {s50:.2f} ms <= 0.5 ms"), (s99 <= 2.0, f"structural own p99 {s99:.2f} ms <= 2 ms"),
            (smax <= 20.0, f"structural own max {smax:.2f} ms <= 20 ms")]
    print(f"targets (issue 24), load average {os.getloadavg()[0]:.2f} now"
          + "".join(f"\n  {'met   ' if ok else 'MISSED'} {text}" for ok, text in tail))
