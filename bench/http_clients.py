"""Which HTTP client should rein's fast path use upstream? aiohttp against httpx, measured.

Each client POSTs the same chat request to the fake OpenAI-compatible upstream
(tests/fake_upstream.py, its own process) over one shared connection pool, as the fast path
does: latency at concurrency 1, requests/s at concurrency 50, and the client's own CPU per
request (this process's CPU time: the cost rein would pay per upstream call).

    python bench/http_clients.py                  # about 30 seconds
    python bench/http_clients.py --requests 300 --seconds 2
"""
import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
from fake_upstream import free_port  # noqa: E402
from proxy_overhead import BODY, pct  # noqa: E402

HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


class Aiohttp:
    name = "aiohttp"

    def __init__(self, limit: int):
        import aiohttp

        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))

    async def post(self, url: str, body: bytes, stream: bool) -> bytes:
        async with self.session.post(url, data=body, headers=HEADERS) as r:
            if not stream:
                return await r.read()
            out = b""
            async for piece in r.content.iter_any():
                out += piece
            return out

    async def close(self) -> None:
        await self.session.close()


class Httpx:
    name = "httpx"
    module = "httpx"

    def __init__(self, limit: int):
        mod = __import__(self.module)
        self.client = mod.AsyncClient(limits=mod.Limits(max_connections=limit, max_keepalive_connections=limit),
                                      timeout=30)

    async def post(self, url: str, body: bytes, stream: bool) -> bytes:
        if not stream:
            return (await self.client.post(url, content=body, headers=HEADERS)).content
        async with self.client.stream("POST", url, content=body, headers=HEADERS) as r:
            out = b""
            async for piece in r.aiter_raw():
                out += piece
            return out

    async def close(self) -> None:
        await self.client.aclose()


class Httpx2(Httpx):
    name = "httpx2 (openai 3.x)"
    module = "httpx2"


async def measure(client_cls, url: str, stream: bool, requests: int, seconds: float, concurrency: int) -> dict:
    body = orjson.dumps({**BODY, "stream": stream})
    client = client_cls(concurrency)
    try:
        for _ in range(30):  # warm-up: connections, first-call imports
            assert b"chatcmpl" in await client.post(url, body, stream)
        lat = []
        cpu = time.process_time()
        for _ in range(requests):
            t = time.perf_counter()
            await client.post(url, body, stream)
            lat.append((time.perf_counter() - t) * 1000)
        cpu_c1 = (time.process_time() - cpu) * 1000 / requests
        done = 0
        stop_at = time.perf_counter() + seconds

        async def worker():
            nonlocal done
            while time.perf_counter() < stop_at:
                await client.post(url, body, stream)
                done += 1

        t, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        rps = done / (time.perf_counter() - t)
        cpu_c50 = (time.process_time() - cpu) * 1000 / max(1, done)
        return {"p50": pct(lat, 0.5), "p99": pct(lat, 0.99), "cpu1": cpu_c1, "rps": rps, "cpu50": cpu_c50}
    finally:
        await client.close()


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "tests/fake_upstream.py", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().startswith(b"ready"), proc.stderr.read()
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        print(f"{args.requests} sequential requests, then {args.seconds:g}s at concurrency {args.concurrency}; "
              f"load average {os.getloadavg()[0]:.2f} at start (a shared machine: compare rows, not runs)")
        for stream in (False, True):
            print(f"\n{'streaming' if stream else 'non-streaming'}")
            print(f"  {'client':<22}{'p50 ms':>8}{'p99 ms':>8}{'CPU ms/req':>12}{'req/s @c':>10}"
                  f"{'CPU ms/req @c':>15}{'vs aiohttp':>12}")
            rows = []
            for cls in (Aiohttp, Httpx, Httpx2):
                rows.append((cls.name, await measure(cls, url, stream, args.requests, args.seconds, args.concurrency)))
            base = rows[0][1]["rps"]
            for name, r in rows:
                print(f"  {name:<22}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['cpu1']:>12.3f}{r['rps']:>10.0f}"
                      f"{r['cpu50']:>15.3f}{r['rps'] / base:>11.2f}x")
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--concurrency", type=int, default=50)
    args = p.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
