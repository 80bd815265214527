"""rein's added latency and throughput against the same upstream reached directly, in one run.

Starts, each in its own process on loopback: the fake OpenAI-compatible upstream
(tests/fake_upstream.py, aiohttp), one `rein serve` per policy (one uvicorn worker each), the
reference peer — a plain FastAPI endpoint calling ``litellm.acompletion`` against the same
upstream — and a bare relay (uvicorn + aiohttp, nothing else: the cost of the extra hop that any
Python proxy pays); both peers live in bench/peers.py. Then, non-streaming and streaming:

- latency at concurrency 1: requests go round-robin to every target (direct, each rein, litellm)
  so contention on a shared machine hits all of them alike; added = target - direct, at p50 and p99;
- requests per second at concurrency 50, each target in turn, and the CPU each request cost the
  serving process (from /proc: unlike wall-clock figures, not inflated by other load on the machine;
  for "direct" that is the upstream's own cost).

    python bench/proxy_overhead.py                # about a minute and a half
    python bench/proxy_overhead.py --rounds 200 --seconds 3
    python bench/proxy_overhead.py --bodies       # real request bodies (../shared/data/tau-bench-airline/dev.json)
    python bench/proxy_overhead.py --bodies PATH  # the same format from another corpus
    python bench/proxy_overhead.py --bodies --replay  # the upstream answers with the recorded replies
    python bench/proxy_overhead.py --ttft         # a 40-sentence reply streamed over 3 s (issue 10)
    python bench/proxy_overhead.py --protocols    # chat vs Responses vs Messages (bench/protocol_overhead.py)

With ``--bodies`` it replays real request bodies instead: for each trajectory of the file
(``{"tools", "trajectories": [{"traj": [OpenAI messages]}]}``), every prefix that ends at a user
message or right after a block of tool results, with the file's tools, through one ``rein serve``
per policy (``default`` with a middleware model on loopback that answers "none" at once), and prints
rein's own time (``x-rein-overhead-ms``) p50/p99/max per policy and by body size.

With ``--ttft`` (issue 10): an upstream streams a reply of 40 sentences (about 400 word chunks) over
about 3 s, on a turn with tool results; time to the first content token and to ``[DONE]``, direct
and through each rein, requests interleaved. Targets: time to first token <= direct + one sentence
(3 s / 40) + 5 ms, total <= direct + 5 ms, wherever the text is checked sentence by sentence
(``x-rein-held: sentences``); a reply held whole for a model refiner is printed, not held to them.

Targets (issue 2): passthrough adds p50 <= 1 ms, p99 <= 5 ms; structural/default p50 <= 3 ms;
passthrough throughput >= 5x the litellm reference. With ``--bodies`` (issue 9): structural's own
time <= 1.5 ms p50 and <= 4 ms p99 on every body, default within 1 ms of it on turns with no model call.
"""

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

ROOT = Path(__file__).resolve().parents[1]
DEV_SET = Path(__file__).resolve().parents[2] / "shared/data/tau-bench-airline/dev.json"
sys.path.insert(0, str(ROOT / "tests"))
from fake_upstream import free_port  # noqa: E402

# A typical agent turn: system prompt, a tool call and its result, two tool definitions.
BODY = {
    "model": "gpt-bench",
    "messages": [
        {"role": "system", "content": "You are the support agent of an online shop. Be brief and exact. " * 3},
        {"role": "user", "content": "Where is my order A1734? It was due on Monday."},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_order", "arguments": "{\"order_id\": \"A1734\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1",
         "content": "{\"status\": \"shipped\", \"carrier\": \"DHL\", \"eta\": \"Thursday\"}"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_order", "description": "Look up an order",
                                          "parameters": {"type": "object", "properties": {
                                              "order_id": {"type": "string"}}, "required": ["order_id"]}}},
        {"type": "function", "function": {"name": "cancel_order", "description": "Cancel an order",
                                          "parameters": {"type": "object", "properties": {
                                              "order_id": {"type": "string"}, "reason": {"type": "string"}},
                                              "required": ["order_id"]}}},
    ],
    "temperature": 0.2,
}


# ---- processes -------------------------------------------------------------------------------
def child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REIN_") and k != "DISABLE_AIOHTTP_TRANSPORT"}
    env["PYTHONPATH"] = str(ROOT)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return env


def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=child_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: process exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            async with session.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not become ready")


# ---- load --------------------------------------------------------------------------------------
async def one(session: aiohttp.ClientSession, url: str, payload: bytes, stream: bool,
              own: list[float] | None = None) -> float:
    """One request; its latency in ms. ``own`` collects rein's self-reported x-rein-overhead-ms."""
    t = time.perf_counter()
    async with session.post(url, data=payload, headers={"content-type": "application/json",
                                                        "authorization": "Bearer sk-bench"}) as r:
        if own is not None and "x-rein-overhead-ms" in r.headers:
            own.append(float(r.headers["x-rein-overhead-ms"]))
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {(await r.read())[:300]!r}")
        if stream:
            tail = b""
            async for piece in r.content.iter_any():
                tail = (tail + piece)[-32:]
            if b"[DONE]" not in tail:
                raise RuntimeError(f"{url}: stream ended without [DONE]")
        else:
            await r.read()
    return (time.perf_counter() - t) * 1000


async def latencies(session, urls: dict[str, str], stream: bool, rounds: int):
    """Per target: latencies, and rein's own reported time (x-rein-overhead-ms)."""
    payload = orjson.dumps({**BODY, "stream": stream})
    out: dict[str, list[float]] = {name: [] for name in urls}
    own: dict[str, list[float]] = {name: [] for name in urls}
    for i in range(rounds + 20):
        for name, url in urls.items():
            warm = i < 20  # warm-up: connections, caches, first-call imports
            ms = await one(session, url, payload, stream, None if warm else own[name])
            if not warm:
                out[name].append(ms)
    return out, own


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux): a per-request cost that contention does not inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def throughput(session, url: str, stream: bool, seconds: float, concurrency: int,
                     pid: int) -> tuple[float, float]:
    """(requests per second, CPU ms per request of the serving process)."""
    payload = orjson.dumps({**BODY, "stream": stream})
    done = 0
    stop_at = time.perf_counter() + seconds

    async def worker():
        nonlocal done
        while time.perf_counter() < stop_at:
            await one(session, url, payload, stream)
            done += 1

    await asyncio.gather(*(one(session, url, payload, stream) for _ in range(concurrency)))  # warm the pool
    t, cpu = time.perf_counter(), cpu_seconds(pid)
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - t), (cpu_seconds(pid) - cpu) * 1000 / max(1, done)


def stop_all(procs) -> None:
    """Terminate the bench's processes, then give each 10 s before killing it."""
    procs = list(procs)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def fresh_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60))


async def run(args: argparse.Namespace) -> None:
    up_port, lite_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    policies = [p for p in ("passthrough", "structural", "default") if (ROOT / "policies/packs" / f"{p}.yaml").exists()]
    procs = {"upstream": start(["tests/fake_upstream.py", "--port", str(up_port)])}
    ports = {p: free_port() for p in policies}
    for p in policies:
        procs[p] = start(["-m", "middleware.cli", "serve", "--port", str(ports[p]), "--upstream", upstream,
                          "--policy", p, "--log-level", "warning"])
    bare_port = free_port()
    procs["litellm"] = start(["bench/peers.py", "litellm", str(lite_port), upstream])
    procs["bare"] = start(["bench/peers.py", "bare", str(bare_port), upstream])
    try:
        async with fresh_session() as session:
            await wait_ready(session, upstream + "/models", procs["upstream"])
            for p in policies:
                await wait_ready(session, f"http://127.0.0.1:{ports[p]}/healthz", procs[p])
            await wait_ready(session, f"http://127.0.0.1:{lite_port}/healthz", procs["litellm"])
            await wait_ready(session, f"http://127.0.0.1:{bare_port}/healthz", procs["bare"])
            urls = {"direct": upstream + "/chat/completions",
                    "bare relay": f"http://127.0.0.1:{bare_port}/v1/chat/completions"}
            urls.update({f"rein {p}": f"http://127.0.0.1:{ports[p]}/v1/chat/completions" for p in policies})
            urls["litellm ref"] = f"http://127.0.0.1:{lite_port}/v1/chat/completions"
            print(f"request body {len(orjson.dumps(BODY))} bytes; {args.rounds} rounds at concurrency 1, "
                  f"{args.seconds:g}s per target at concurrency {args.concurrency}; os.cpu_count()={os.cpu_count()}, "
                  f"load average {os.getloadavg()[0]:.2f} at start")
            pids = {"direct": procs["upstream"].pid, "litellm ref": procs["litellm"].pid, "bare relay": procs["bare"].pid}
            pids.update({f"rein {p}": procs[p].pid for p in policies})
            verdicts = []
            for stream in (False, True):
                # A fresh pool per phase: connections idle past the servers' keep-alive timeout
                # would otherwise be closed under a request (a client-side race, not a result).
                async with fresh_session() as s:
                    lat, own = await latencies(s, urls, stream, args.rounds)
                load = {}
                for name, url in urls.items():
                    async with fresh_session() as s:
                        load[name] = await throughput(s, url, stream, args.seconds, args.concurrency, pids[name])
                report(lat, own, load, stream)
                verdicts += targets(lat, load, stream)
            print("\ntargets (issue 2)" + "".join(f"\n  {v}" for v in verdicts))
    finally:
        stop_all(procs.values())


def report(lat: dict[str, list[float]], own: dict[str, list[float]], load: dict[str, tuple[float, float]],
           stream: bool) -> None:
    d50, d99 = pct(lat["direct"], 0.5), pct(lat["direct"], 0.99)
    print(f"\n{'streaming' if stream else 'non-streaming'} (latency to the last byte)")
    print(f"  {'target':<18}{'p50 ms':>8}{'p99 ms':>8}{'added p50':>11}{'added p99':>11}{'own p50/p99':>13}"
          f"{'req/s @c':>10}{'vs litellm':>12}{'CPU ms/req':>12}")
    for name, xs in lat.items():
        p50, p99 = pct(xs, 0.5), pct(xs, 0.99)
        added = "" if name == "direct" else f"{p50 - d50:>+11.2f}{p99 - d99:>+11.2f}"
        mine = f"{pct(own[name], 0.5):>6.2f}/{pct(own[name], 0.99):<6.2f}" if own[name] else ""
        rps, cpu = load[name]
        ratio = f"{rps / load['litellm ref'][0]:>11.1f}x"
        print(f"  {name:<18}{p50:>8.2f}{p99:>8.2f}{added or ' ' * 22}{mine:>13}{rps:>10.0f}{ratio}{cpu:>12.3f}")
    spread = statistics.pstdev(lat["direct"])
    print(f"  (direct latency stdev {spread:.2f} ms: the noise floor of 'added'; 'own' is rein's x-rein-overhead-ms,"
          f" its time from handler entry to response, upstream wait excluded)")


def targets(lat: dict[str, list[float]], load: dict[str, tuple[float, float]], stream: bool) -> list[str]:
    mode = "stream" if stream else "non-stream"
    added = {name: (pct(xs, 0.5) - pct(lat["direct"], 0.5), pct(xs, 0.99) - pct(lat["direct"], 0.99))
             for name, xs in lat.items()}

    def line(ok: bool, text: str) -> str:
        return f"{'met   ' if ok else 'MISSED'} {mode:<10} {text}"

    out = [line(added["rein passthrough"][0] <= 1.0, f"passthrough added p50 {added['rein passthrough'][0]:.2f} ms <= 1 ms"),
           line(added["rein passthrough"][1] <= 5.0, f"passthrough added p99 {added['rein passthrough'][1]:.2f} ms <= 5 ms")]
    ratio = load["rein passthrough"][0] / load["litellm ref"][0]
    out.append(line(ratio >= 5.0, f"passthrough throughput {ratio:.1f}x the litellm reference >= 5x"))
    for p in ("structural", "default"):
        if f"rein {p}" in added:
            out.append(line(added[f"rein {p}"][0] <= 3.0, f"{p} added p50 {added[f'rein {p}'][0]:.2f} ms <= 3 ms"))
    return out


# ---- real request bodies (--bodies) -------------------------------------------------------------
# rein's own model for `default`: answers every prompt (diagnosis, planner, review) with "nothing to do".
NONE_REPLY = orjson.dumps({"error": "none", "evidence": "", "confidence": 0, "plan": "", "refiners": [],
                           "reason": "none", "ok": True, "feedback": "", "revision": ""}).decode()


def serve_none(port: int) -> None:
    """A middleware model on loopback that answers "none" at once and counts the calls it got."""
    from aiohttp import web

    calls = 0

    async def chat(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        await request.read()
        return web.json_response({"id": "none", "object": "chat.completion", "created": 0, "model": "none",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant", "content": NONE_REPLY}}],
                                  "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

    async def count(request: web.Request) -> web.Response:
        return web.json_response({"calls": calls})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", count)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=400, help="requests per target at concurrency 1")
    p.add_argument("--seconds", type=float, default=4.0, help="duration per target at concurrency 50")
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--bodies", type=Path, nargs="?", const=DEV_SET, default=None,
                   help=f"replay real request bodies from a trajectory file (default {DEV_SET})")
    p.add_argument("--replay", action="store_true",
                   help="with --bodies: the upstream answers with each trajectory's recorded reply")
    p.add_argument("--protocols", action="store_true",
                   help="rows per wire format (chat, Responses, Messages): bench/protocol_overhead.py")
    p.add_argument("--ttft", action="store_true", help="time to first token and total of a long, slow stream")
    p.add_argument("--stream-rounds", type=int, default=5, help="with --ttft: requests per target")
    p.add_argument("--serve-paced", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the --ttft upstream
    p.add_argument("--serve-none", type=int, metavar="PORT", help=argparse.SUPPRESS)  # rein's model, for --bodies
    p.add_argument("--serve-replay", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the --replay upstream
    args = p.parse_args()
    from body_overhead import replay, serve_replay
    from stream_overhead import serve_paced, ttft

    if args.serve_none:
        return serve_none(args.serve_none)
    if args.serve_replay:
        return serve_replay(args.serve_replay, args.bodies)
    if args.serve_paced:
        return serve_paced(args.serve_paced)
    if args.bodies is not None and not args.bodies.exists():
        raise SystemExit(f"{args.bodies}: no such file")
    main_coro = ttft(args) if args.ttft else replay(args) if args.bodies is not None else run(args)
    if args.protocols:
        import protocol_overhead

        main_coro.close()
        main_coro = protocol_overhead.run(args)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main_coro)
    else:
        uvloop.run(main_coro)


if __name__ == "__main__":
    main()
