"""A short, bounded run of bench/load.py (the full one is 20,000 + 20,000 requests): real
`rein serve` and fake upstream processes on loopback, concurrency 50, streaming and not.
Passes only with zero errors and rein's memory after the run within 10% of after warm-up."""
from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path

LOAD = Path(__file__).resolve().parents[1] / "bench" / "load.py"


def test_short_load_run_has_zero_errors_and_holds_memory(capsys):
    spec = importlib.util.spec_from_file_location("rein_bench_load", LOAD)
    load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load)
    args = load.parse(["--requests", "600", "--concurrency", "50", "--warmup", "300", "--baseline", "100",
                       "--max-seconds", "120"])
    code = asyncio.run(load.main(args))
    out = capsys.readouterr().out
    print(out)
    assert re.findall(r"(\d+) requests in .* errors (\d+)", out) == [("600", "0"), ("600", "0")]
    assert "rein added (x-rein-overhead)" in out
    assert code == 0 and "PASS" in out
