"""Slow clients cannot starve a real `rein serve` (issue 20, defect 6): connections that trickle
their request headers a byte at a time are closed after the header timeout, and past the idle cap
the longest waiting is closed at once, so at a low open-file limit normal requests still go
through while hundreds of such connections keep coming."""
from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
import time

import httpx

from tests.fake_upstream import ThreadedUpstream, free_port
from tests.test_ops_serve import ROOT, stop

FILE_LIMIT = 128  # rein's own process: a flood of idle connections would exhaust it
TRICKLERS = 300


def start_limited(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FILE_LIMIT, FILE_LIMIT))

    env = {k: v for k, v in os.environ.items() if not k.startswith("REIN_")}
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "serve", "--port", str(port), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=limit)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rein exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("rein did not start")


async def trickle(port: int, closed: list[float], stop_at: float) -> None:
    """Open a connection and send a request's headers one byte every 0.3 s, never finishing them."""
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return
    opened = time.monotonic()
    try:
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: rein\r\n")
        while time.monotonic() < stop_at:
            writer.write(b"x")
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(1), 0.3) == b"":
                    closed.append(time.monotonic() - opened)
                    return
            except asyncio.TimeoutError:
                pass
    except (ConnectionError, OSError):
        closed.append(time.monotonic() - opened)
    finally:
        writer.close()


async def test_trickling_connections_do_not_starve_normal_requests():
    with ThreadedUpstream() as up:
        proc, url = start_limited("--upstream", up.base_url, "--policy", "passthrough", "--header-timeout", "2",
                                  "--max-idle-connections", "32")
        port = int(url.rsplit(":", 1)[1])
        try:
            closed: list[float] = []
            stop_at = time.monotonic() + 8
            tasks = []
            for _ in range(TRICKLERS):  # more than the server's file limit, as fast as they connect
                tasks.append(asyncio.create_task(trickle(port, closed, stop_at)))
                await asyncio.sleep(0.002)
            await asyncio.sleep(0.5)
            answered, started = 0, time.monotonic()
            async with httpx.AsyncClient(base_url=url, timeout=5) as c:
                for i in range(10):  # new connections each, while the flood goes on
                    c.cookies.clear()
                    r = await c.post("/v1/chat/completions", json={"model": "m", "messages": [
                        {"role": "user", "content": f"hello {i}"}]}, headers={"connection": "close"})
                    answered += r.status_code == 200
                    assert (await c.get("/healthz", headers={"connection": "close"})).status_code == 200
            took = time.monotonic() - started
            await asyncio.gather(*tasks)
        finally:
            out = stop(proc)
    assert answered == 10, out[-2000:]
    assert took < 10, f"10 normal requests took {took:.1f} s"
    # every trickler was closed by the server: the longest waiting first past the cap, the rest by the timeout
    assert len(closed) >= TRICKLERS * 0.9, (len(closed), out[-2000:])
    assert max(closed) < 2 + 1.5, max(closed)
