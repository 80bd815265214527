"""The loop probe (middleware/proxy/ops/loop_probe.py, REIN_LOOP_PROBE) and bench/load.py --stalls' reading of it:
a held event loop is seen, sampled where it was held, and its time put down to the right cause."""
from __future__ import annotations

import asyncio
import gc
import importlib.util
import sys
import time
from pathlib import Path

import orjson
import pytest

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel
from middleware.proxy import create_app

ROOT = Path(__file__).resolve().parents[1]


def _stalls():
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("rein_bench_load_stalls", ROOT / "bench" / "load_stalls.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hold_the_loop_for_a_while(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:  # Python bytecode: the watcher thread gets the GIL between them
        sum(range(200))


async def test_the_probe_sees_a_held_loop_samples_it_and_records_each_request(tmp_path, monkeypatch):
    path = tmp_path / "probe.jsonl"
    monkeypatch.setenv("REIN_LOOP_PROBE", str(path))
    app = create_app(Settings(policy="structural"), Engine(FunctionModel(lambda r: "Done."), "structural"))
    from fake_upstream import asgi_client

    async with asgi_client(app) as client:
        r = await client.post("/v1/chat/completions", json={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200
        await asyncio.sleep(0.05)  # the ticker runs
        hold_the_loop_for_a_while(0.08)
        gc.collect()
        await asyncio.sleep(0.7)  # the watcher writes every half second
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    lags = [r for r in records if r["kind"] == "lag"]
    assert lags and max(r["ms"] for r in lags) >= 60
    samples = [r for r in records if r["kind"] == "sample"]
    assert any("hold_the_loop_for_a_while" in " ".join(s["stack"]) for s in samples)
    assert any(r["kind"] == "gc" and r["gen"] == 2 for r in records)
    (request,) = [r for r in records if r["kind"] == "request"]
    assert request["path"] == "/v1/chat/completions" and request["own_ms"] >= 0 and request["end"] > request["start"]


def test_the_report_puts_held_time_down_to_collections_and_to_the_sampled_causes(tmp_path, capsys):
    stalls = _stalls()
    path = tmp_path / "probe.jsonl"
    rows = [
        {"kind": "request", "start": 0.0, "end": 0.5, "path": "/v1/chat/completions", "bytes": 20000, "own_ms": 400.0},
        {"kind": "lag", "start": 0.1, "end": 0.2, "ms": 100.0},
        {"kind": "gc", "start": 0.1, "end": 0.14, "gen": 2, "collected": 0, "ms": 40.0},
        {"kind": "sample", "t": 0.15, "stack": ["pydantic/main.py:600 model_validate",
                                               "middleware/proxy/routes/validate.py:120 _validate"]},
        {"kind": "sample", "t": 0.17, "stack": ["inception/structural.py:50 detect", "middleware/pipeline.py:99 diagnose"]},
        {"kind": "sample", "t": 0.18, "stack": ["uvloop/__init__.py:80 run", "middleware/commands/serve.py:132 run"]},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    out = stalls.report(path, worst=1)
    printed = capsys.readouterr().out
    assert out["held_ms"] == 100.0 and out["gen2"] == 1
    shares = out["by_cause"]
    assert shares == pytest.approx({"garbage collection (gen 2)": 40.0, "request validation (pydantic)": 20.0,
                                    "detectors (inception)": 20.0,
                                    "event loop in C (epoll, uvloop's socket callbacks)": 20.0})
    assert "own    400.0 ms" in printed and "gen2 40.0 ms" in printed
