"""bench/load.py --stalls: read what the serving process's loop probe wrote (middleware/proxy/loop_probe.py)
and say where rein's tail comes from: the 20 requests with the most own time, what the event loop was
doing while each was in flight (collections, stacks sampled while the loop was held), and each cause's
share of all the time the loop was held.
"""
from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

# The first rule that names a frame, innermost frame first, is the sample's cause.
CAUSES = (
    ("logging", ("logging/__init__.py",)),
    ("metrics / tracing export", ("opentelemetry/", "proxy/ops/metrics.py", "prometheus_client/", "middleware/tracing.py")),
    ("decision log", ("middleware/decisions/",)),
    ("body parse + structural limits", ("validate.py:.* _load", "validate.py:.* load_body", "proxy/routes/limits.py",
                                       "policies/limits.py", "validate.py:.* check_depth")),
    ("request validation (pydantic)", ("pydantic/", "pydantic_core/", "proxy/routes/validate.py", "policies/messages.py",
                                       "responses_map.py", "messages_map.py")),
    ("evidence building (refiners)", ("refiners/evidence.py", "refiners/records.py", "refiners/facts.py",
                                      "refiners/evidence_index.py", "refiners/message_facts.py",
                                      "refiners/turn_facts.py")),
    ("refiners (planner, checks)", ("refiners/",)),
    ("detectors (inception)", ("inception/", "policies/untrusted")),
    ("upstream body (build, dump)", ("models/openai_compat.py", "models/instrumented.py")),
    ("pipeline / LangGraph", ("langgraph/", "langchain_core/", "middleware/pipeline/", "middleware/state.py",
                              "middleware/agent_stream.py", "middleware/rule_modes.py")),
    ("HTTP client (aiohttp)", ("aiohttp/", "yarl/", "multidict/")),
    ("HTTP server (uvicorn, starlette, rein's ASGI guards)", ("uvicorn/", "starlette/", "fastapi/", "h11/",
                                                              "httptools/", "middleware/proxy/")),
    ("event loop (asyncio, uvloop)", ("asyncio/", "uvloop/")),
)


def _matches(frame: str, pattern: str) -> bool:
    if ".* " in pattern:
        path, func = pattern.split(".* ")
        return path in frame and frame.endswith(" " + func)
    return pattern in frame


# A sample whose innermost Python frame is the loop's runner caught the loop in C: in epoll (idle)
# or in uvloop's own callbacks (socket reads and writes, timers).
_IN_C = ("asyncio/runners.py", "uvloop/__init__.py", "uvicorn/server.py", "uvicorn/main.py", "commands/serve.py")


def cause_of(stack: list[str]) -> str:
    stack = [f for f in stack if "loop_probe.py" not in f]  # the probe's own gc callback
    if stack and any(p in stack[0] for p in _IN_C):
        return "event loop in C (epoll, uvloop's socket callbacks)"
    for frame in stack:
        for name, patterns in CAUSES:
            if any(_matches(frame, p) for p in patterns):
                return name
    return stack[0].split(":")[0] if stack else "(no frame)"


def read(path: Path) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"request": [], "lag": [], "gc": [], "sample": []}
    if path.exists():
        for line in path.read_bytes().splitlines():
            if line:
                r = orjson.loads(line)
                out[r["kind"]].append(r)
    for kind in ("lag", "gc", "request"):
        out[kind].sort(key=lambda r: r["start"])
    out["sample"].sort(key=lambda r: r["t"])
    return out


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def _within(records: list[dict[str, Any]], t0: float, t1: float) -> list[dict[str, Any]]:
    return [r for r in records if r["end"] > t0 and r["start"] < t1]


def _samples(samples: list[dict[str, Any]], times: list[float], t0: float, t1: float) -> list[dict[str, Any]]:
    return samples[bisect.bisect_left(times, t0):bisect.bisect_right(times, t1)]


def shares(rec: dict[str, list[dict[str, Any]]]) -> tuple[float, Counter]:
    """The loop's held time (sum of the ticker's lags) split by cause: a collection's time as
    itself, the rest of each lag by the causes of the stacks sampled during it."""
    times = [s["t"] for s in rec["sample"]]
    by_cause: Counter = Counter()
    total = 0.0
    for lag in rec["lag"]:
        t0, t1 = lag["start"], lag["end"]
        ms = lag["ms"]
        total += ms
        left = ms
        for g in _within(rec["gc"], t0, t1):
            part = _overlap(t0, t1, g["start"], g["end"]) * 1000
            by_cause[f"garbage collection (gen {g['gen']})"] += part
            left -= part
        # A sample is taken when the watcher gets the GIL: up to a few ms after the stall's end.
        got = _samples(rec["sample"], times, t0, t1 + 0.005)
        if left <= 0:
            continue
        if not got:
            by_cause["(no sample: held in C without a bytecode boundary)"] += left
            continue
        for s in got:
            by_cause[cause_of(s["stack"])] += left / len(got)
    return total, by_cause


def _our_frame(stack: list[str]) -> str:
    """The innermost frame of rein's own code (or the innermost at all)."""
    for frame in stack:
        if frame.startswith(("middleware/", "inception/", "refiners/", "policies/")) and "loop_probe" not in frame:
            return frame
    return stack[0] if stack else "?"


def report(path: Path, worst: int = 20) -> dict[str, Any]:
    rec = read(path)
    reqs = [r for r in rec["request"] if "own_ms" in r and r["path"].startswith("/v1/")]
    times = [s["t"] for s in rec["sample"]]
    total, by_cause = shares(rec)
    lags = sorted((lag["ms"] for lag in rec["lag"]), reverse=True)
    gcs = Counter(g["gen"] for g in rec["gc"])
    gen2 = [g for g in rec["gc"] if g["gen"] == 2]
    span = (reqs[-1]["end"] - reqs[0]["start"]) if reqs else 0.0
    print(f"\nloop probe: {len(reqs)} requests over {span:.1f} s; the loop was held >= 5 ms {len(lags)} times, "
          f"{total:.0f} ms in all ({total / 10 / max(span, 1e-9):.1f}% of the run); longest "
          + ", ".join(f"{x:.0f}" for x in lags[:5]) + " ms")
    print(f"collections: gen0 {gcs[0]}, gen1 {gcs[1]}, gen2 {gcs[2]}"
          + (f" (gen2 longest {max(g['ms'] for g in gen2):.1f} ms)" if gen2 else ""))
    print("\nwhere the held time went (share of the loop's held time):")
    for cause, ms in by_cause.most_common():
        print(f"  {ms / max(total, 1e-9) * 100:5.1f}%  {ms:8.0f} ms  {cause}")
    print(f"\nthe {worst} requests with the most own time (x-rein-overhead-ms), and what the loop did meanwhile:")
    for r in sorted(reqs, key=lambda r: -r["own_ms"])[:worst]:
        t0, t1 = r["start"], r["end"]
        held = sum(_overlap(t0, t1, lag["start"], lag["end"]) for lag in rec["lag"]) * 1000
        in_gc = [g for g in _within(rec["gc"], t0, t1) if g["gen"] > 0 or g["ms"] > 2]
        got = _samples(rec["sample"], times, t0, t1)
        causes = Counter(cause_of(s["stack"]) for s in got)
        frames = Counter(_our_frame(s["stack"]) for s in got)
        biggest = max((q["bytes"] for q in _within(reqs, t0, t1)), default=0)
        print(f"  own {r['own_ms']:8.1f} ms  total {(t1 - t0) * 1000:8.1f} ms  body {r['bytes'] / 1000:5.1f} KB "
              f"(largest in flight {biggest / 1000:.1f} KB)  loop held {held:7.1f} ms  {r.get('diagnosis', '')}")
        if in_gc:
            print("      collections: " + ", ".join(f"gen{g['gen']} {g['ms']:.1f} ms" for g in in_gc[:6]))
        if causes:
            print("      samples: " + ", ".join(f"{c} x{n}" for c, n in causes.most_common(4)))
            print("      frames:  " + "; ".join(f"{f} x{n}" for f, n in frames.most_common(3)))
    return {"held_ms": total, "by_cause": dict(by_cause), "lags": len(lags), "gen2": len(gen2)}
