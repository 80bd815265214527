"""What the decision log adds to rein's time per request (issue 22: at most 0.1 ms at p50).

The whole pipeline, in process, in front of an agent that replays the recorded replies of a real
corpus; two engines built alike, one with a decision log (a SQLite file, its writer thread running)
and one without, asked in turn for every turn, several passes. Prints rein's time per request
(the pipeline's wall time less the agent's) for both, p50 and p99, and the difference: a same-run
figure, so a busy machine slows both arms alike.

    python bench/decision_overhead.py                    # ../shared/data/tau-bench-airline/dev.json, structural
    python bench/decision_overhead.py --policy default --content --passes 5
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from middleware.decisions import DecisionLog, Filters, open_decision_store  # noqa: E402
from middleware.engine import Engine  # noqa: E402
from middleware.models.testing import FunctionModel  # noqa: E402
from policies.chat_model import ModelRequest  # noqa: E402
from policies.loader import load_policy  # noqa: E402
from real_dialogues import DATA, load, none_reply  # noqa: E402
from real_replay import percentile, recorded  # noqa: E402


async def measure(path: Path, policy_name: str, passes: int, content: bool) -> dict:
    tools, trajs = load(path)
    cases = [(n, cut) for n, tr in enumerate(trajs) for cut in sorted(tr.user_cuts + tr.tool_cuts)
             if cut < len(tr.raw) and tr.raw[cut].get("role") == "assistant"]
    policy = load_policy(policy_name)
    agent = FunctionModel(lambda r: recorded(trajs[r.extra["bench_case"][0]].raw[r.extra["bench_case"][1]]),
                          name="replay")
    rein_model = FunctionModel(none_reply, name="none")
    with tempfile.TemporaryDirectory() as tmp:
        log = DecisionLog(open_decision_store(os.path.join(tmp, "d.db")), content=content)
        arms = {"without log": Engine(agent, policy, rein_model=rein_model).pipeline(),
                "with log": Engine(agent, policy, rein_model=rein_model, decisions=log).pipeline()}
        times: dict[str, list[float]] = {k: [] for k in arms}
        for p in range(passes + 1):  # the first pass warms both arms (imports, caches) and is not counted
            for i, (n, cut) in enumerate(cases):
                request = ModelRequest(messages=trajs[n].parsed[:cut], tools=tools, model="replay",
                                       extra={"bench_case": [n, cut]})
                order = list(arms.items()) if i % 2 == 0 else list(reversed(arms.items()))
                for name, pipeline in order:
                    started = time.perf_counter()
                    state = await pipeline.run(request)
                    ms = (time.perf_counter() - started) * 1000 - state.get("upstream_ms", 0.0)
                    if p:
                        times[name].append(ms)
        log.close()
        logged = log.store.count(Filters())
        writer_ms = log.cpu_s * 1000
        if log.failures:
            print(f"the log failed {log.failures} time(s): {list(log.errors)[-3:]}", file=sys.stderr)
    out = {k: {"p50": percentile(v, .5), "p99": percentile(v, .99), "n": len(v)} for k, v in times.items()}
    out["logged"] = logged
    out["writer_ms"] = writer_ms  # the writer thread's CPU, all passes
    out["requests"] = len(cases) * (passes + 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--policy", default="structural")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--content", action="store_true", help="log message text too (REIN_LOG_CONTENT=1)")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"no corpus at {args.data}")
    r = asyncio.run(measure(args.data, args.policy, args.passes, args.content))
    print(f"{args.data.parent.name} / {args.policy}, {r['with log']['n']} requests per arm "
          f"({r['logged']} decisions logged of {r['requests']} requests, content {'on' if args.content else 'off'})")
    for name in ("without log", "with log"):
        print(f"  {name:<12} rein's time p50 {r[name]['p50']:.3f} ms   p99 {r[name]['p99']:.3f} ms")
    print(f"  the writer thread's CPU: {r['writer_ms'] / r['requests']:.3f} ms per request "
          f"({r['writer_ms'] / max(1, r['logged']):.3f} ms per decision), off the request's path")
    d50 = r["with log"]["p50"] - r["without log"]["p50"]
    d99 = r["with log"]["p99"] - r["without log"]["p99"]
    print(f"  the log adds  p50 {d50:+.3f} ms   p99 {d99:+.3f} ms   (target: p50 <= 0.1 ms)"
          f"{'  met' if d50 <= 0.1 else '  NOT MET'}")


if __name__ == "__main__":
    main()
