"""What holding tool calls costs a stream (issue 18): rein's relay of a 302-chunk text stream
before the hold existed (commit 3f989aa), now with no action check covering the tools
(hold_calls=False, every turn of a pack without write tools), and now with one (hold_calls=True).
In process, no network; runs interleaved so machine load hits all three alike; prints ratios.

    .venv/bin/python bench/stream_hold.py [--runs 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from middleware import agent_stream  # noqa: E402
from middleware.models.chunks import response_chunks  # noqa: E402
from middleware.models.testing import as_response  # noqa: E402
from policies.chat_model import ModelRequest  # noqa: E402
from policies.messages import assistant  # noqa: E402

BEFORE = "3f989aa"  # the last commit before tool-call chunks could be held


def before_module():
    source = subprocess.run(["git", "show", f"{BEFORE}:middleware/agent_stream.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "agent_stream_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("agent_stream_before", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


CHUNKS = response_chunks(as_response(assistant(" ".join(["word"] * 1200)), "m"))


class Agent:
    async def stream(self, request):
        for c in CHUNKS:
            yield c


async def once(relay, **options) -> float:
    out: list = []
    started = time.perf_counter()
    await relay(Agent(), ModelRequest(messages=[]), out.append, set(), **options)
    return (time.perf_counter() - started) * 1e6


async def main(runs: int) -> None:
    cases = {"before": (before_module().relay_agent_stream, {}),
             "hold_calls=False": (agent_stream.relay_agent_stream, {}),
             "hold_calls=True": (agent_stream.relay_agent_stream, {"hold_calls": True})}
    times: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(runs):
        for name, (relay, options) in cases.items():
            times[name].append(await once(relay, **options))
    base = statistics.median(times["before"])
    print(f"{len(CHUNKS)} chunks per stream (text only), median of {runs} interleaved runs")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:18s} median {median:8.1f} us   ratio to before {median / base:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    asyncio.run(main(parser.parse_args().runs))
