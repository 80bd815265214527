"""`rein serve` as a real process on loopback: graceful drain on SIGTERM (the open stream
finishes, new requests get 503), worker processes, and policy reload on SIGHUP."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.fake_upstream import ThreadedUpstream, free_port

ROOT = Path(__file__).resolve().parents[1]
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def start_rein(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "middleware.cli", "serve", "--port", str(port), *args],
                            cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # a start-up takes seconds alone, tens of them on a loaded CI machine
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"rein exited: {proc.stdout.read()}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("rein did not become ready")


def stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.kill()
    out, _ = proc.communicate(timeout=10)
    return out or ""


async def test_sigterm_drains_open_stream_and_refuses_new_requests():
    with ThreadedUpstream(slow_s=1.5) as up:
        proc, url = start_rein("--upstream", up.base_url, "--policy", "passthrough", "--drain-timeout", "20")
        try:
            async with httpx.AsyncClient(base_url=url, timeout=20) as c:
                async def stream() -> list[str]:
                    body = {**CHAT, "model": "fake-stall", "stream": True}
                    async with c.stream("POST", "/v1/chat/completions", json=body) as r:
                        assert r.status_code == 200
                        return [line async for line in r.aiter_lines() if line.startswith("data:")]

                task = asyncio.create_task(stream())
                await asyncio.sleep(0.5)  # the stream is open, waiting on the stalled upstream
                proc.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.3)
                async with httpx.AsyncClient(base_url=url, timeout=5) as fresh:  # a new connection
                    refused = await fresh.post("/v1/chat/completions", json=CHAT)
                    ready = await fresh.get("/readyz")
                assert refused.status_code == 503
                assert refused.json()["error"]["code"] == "shutting_down"
                assert ready.status_code == 503
                lines = await task
            assert lines[-1] == "data: [DONE]"  # the in-flight stream finished whole
            assert "hello" in "".join(lines)
            # uvicorn re-raises the SIGTERM it caught once shut down: a clean exit "by" SIGTERM
            assert proc.wait(timeout=15) in (0, -signal.SIGTERM)
        finally:
            out = stop(proc)
        assert "draining 1 in-flight request" in out and "Finished server process" in out


def test_workers_serve_and_stop_cleanly():
    with ThreadedUpstream() as up:
        proc, url = start_rein("--upstream", up.base_url, "--policy", "passthrough", "--workers", "2")
        try:
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            # uvicorn's spawn start method adds a resource tracker beside the two workers
            assert len(children) >= 2
            with httpx.Client(base_url=url, timeout=10) as c:
                for _ in range(20):
                    r = c.post("/v1/chat/completions", json=CHAT)
                    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Echo: hello there"
                assert "rein_requests_total" in c.get("/metrics").text
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        finally:
            stop(proc)


def test_sighup_reloads_the_configured_policy_file(tmp_path):
    from policies.loader import PACKS

    path = tmp_path / "ops.yaml"
    text = (PACKS / "passthrough.yaml").read_text()
    path.write_text(text)
    with ThreadedUpstream() as up:
        proc, url = start_rein("--upstream", up.base_url, "--policy", str(path))
        try:
            with httpx.Client(base_url=url, timeout=10) as c:
                assert c.post("/v1/chat/completions", json=CHAT).headers["x-rein-policy"] == "passthrough"
                path.write_text(text.replace("name: passthrough", "name: edited-by-operator"))
                proc.send_signal(signal.SIGHUP)
                for _ in range(50):
                    name = c.post("/v1/chat/completions", json=CHAT).headers["x-rein-policy"]
                    if name == "edited-by-operator":
                        break
                    time.sleep(0.1)
                assert name == "edited-by-operator"
                path.write_text("taxonomy: [broken")  # a bad edit: refused, the running policy stays
                proc.send_signal(signal.SIGHUP)
                time.sleep(0.5)
                r = c.post("/v1/chat/completions", json=CHAT)
                assert r.status_code == 200 and r.headers["x-rein-policy"] == "edited-by-operator"
                assert proc.poll() is None
        finally:
            out = stop(proc)
        assert "policy reload from" in out and "refused" in out


@pytest.mark.parametrize("flag", ["--max-body-bytes", "--limit-concurrency"])
def test_serve_flags_reach_the_server(flag):
    with ThreadedUpstream() as up:
        proc, url = start_rein("--upstream", up.base_url, "--policy", "passthrough", flag, "300")
        try:
            big = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}]}
            r = httpx.post(url + "/v1/chat/completions", json=big, timeout=10)
            assert r.status_code == (413 if flag == "--max-body-bytes" else 200)
        finally:
            stop(proc)
