"""Smoke test of the `rein` console script: `rein serve` in front of the fake upstream, one real socket each way."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
from fake_upstream import ThreadedUpstream, free_port

REIN = shutil.which("rein", path=str(Path(sys.executable).parent)) or "rein"


def wait_healthy(proc: subprocess.Popen, url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"rein serve exited early:\n{proc.communicate()[0]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).json() == {"status": "ok"}:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("rein serve did not answer /healthz in time")


def test_rein_serve_answers_and_stops():
    port = free_port()
    with ThreadedUpstream() as up:
        proc = subprocess.Popen([REIN, "serve", "--port", str(port), "--upstream", up.base_url, "--policy", "passthrough"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "REIN_UPSTREAM_API_KEY": ""})
        try:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(proc, url)
            client = openai.OpenAI(base_url=url + "/v1", api_key="sk-smoke", max_retries=0, timeout=10)
            resp = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "ping"}])
            assert resp.choices[0].message.content == "Echo: ping"
            chunks = list(client.chat.completions.create(model="m", stream=True,
                                                         messages=[{"role": "user", "content": "pong"}]))
            assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: pong"
            assert up.requests[-1].headers["authorization"] == "Bearer sk-smoke"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
    # uvicorn re-raises SIGTERM after its graceful shutdown, so "killed by SIGTERM" is a clean stop here.
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Traceback" not in out, out
    assert f"on http://127.0.0.1:{port}/v1" in out
