"""proxy_overhead --ttft: time to first content token and total time of a long, slow stream through
rein against the same upstream reached directly (issue 10)."""
from __future__ import annotations

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from proxy_overhead import (BODY, DEV_SET, NONE_REPLY, ROOT, child_env, free_port, fresh_session, pct,  # noqa: F401
                            start, stop_all, wait_ready)


# ---- a long reply streamed slowly (--ttft) ------------------------------------------------------
PACED_SENTENCES = 40
PACED_SECONDS = 3.0


def paced_reply() -> str:
    """40 sentences about BODY's order, with values the factuality pass reads (ids, statuses, days)."""
    lines = ["Your order A1734 has shipped.", "The carrier is DHL.", "It should arrive on Thursday."]
    for i in range(4, PACED_SENTENCES + 1):
        lines.append(f"Point {i}: the parcel for order A1734 is tracked by DHL and its status stays shipped."
                     if i % 3 else f"Note {i}: you can reply here at any time and I will check again.")
    return " ".join(lines)


def serve_paced(port: int) -> None:
    """An upstream that streams ``paced_reply`` word by word over PACED_SECONDS, in its own shape."""
    from aiohttp import web

    words = paced_reply().split(" ")
    base = {"id": "chatcmpl-PACED", "object": "chat.completion.chunk", "created": 1700000000,
            "model": "paced", "system_fingerprint": "fp_paced"}

    def event(delta: dict, finish: str | None = None) -> bytes:
        return b"data: " + orjson.dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}) \
            + b"\n\n"

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        if not body.get("stream"):  # rein's own calls, when the upstream serves them: "nothing to do"
            return web.json_response({"id": "x", "object": "chat.completion", "created": 0, "model": "paced",
                                      "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                          "role": "assistant", "content": NONE_REPLY.decode()}}]})
        r = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await r.prepare(request)
        await r.write(event({"role": "assistant", "content": ""}))
        t0, step = time.perf_counter(), PACED_SECONDS / len(words)
        for i, w in enumerate(words):
            delay = t0 + i * step - time.perf_counter()  # on a schedule: no drift from slow writes
            if delay > 0:
                await asyncio.sleep(delay)
            await r.write(event({"content": w if i == 0 else " " + w}))
        await r.write(event({}, "stop") + b"data: [DONE]\n\n")
        return r

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def timed_stream(session: aiohttp.ClientSession, url: str, payload: bytes) -> tuple[float, float, str, float]:
    """(ms to the first content token, ms to [DONE], x-rein-held, ms from the last token to [DONE])."""
    t = time.perf_counter()
    first = last = None
    async with session.post(url, data=payload, headers={"content-type": "application/json",
                                                        "authorization": "Bearer sk-bench"}) as r:
        held = r.headers.get("x-rein-held", "-")
        async for line in r.content:
            if first is None and line.startswith(b"data: {") and b'"content":"' in line \
                    and b'"content":""' not in line:
                first = (time.perf_counter() - t) * 1000
            if line.startswith(b"data: {") and b'"content":"' in line:
                last = time.perf_counter()
            if line.startswith(b"data: [DONE]"):
                break
    done = time.perf_counter()
    return (first if first is not None else float("nan"), (done - t) * 1000, held,
            (done - (last or done)) * 1000)


async def ttft(args: argparse.Namespace) -> None:
    up_port, none_port = free_port(), free_port()
    upstream, none_url = f"http://127.0.0.1:{up_port}/v1", f"http://127.0.0.1:{none_port}/v1"
    procs = {"upstream": start(["bench/proxy_overhead.py", "--serve-paced", str(up_port)]),
             "none": start(["bench/proxy_overhead.py", "--serve-none", str(none_port)])}
    targets = {"passthrough": ["--policy", "passthrough"], "structural": ["--policy", "structural"],
               "default": ["--policy", "default"],
               "default + middleware model": ["--policy", "default", "--middleware-model", none_url]}
    ports = {name: free_port() for name in targets}
    for name, extra in targets.items():
        procs[name] = start(["-m", "middleware.cli", "serve", "--port", str(ports[name]), "--upstream", upstream,
                             "--log-level", "warning", *extra])
    sentence_ms = PACED_SECONDS * 1000 / PACED_SENTENCES
    try:
        async with fresh_session() as session:
            await wait_ready(session, upstream + "/models", procs["upstream"])
            await wait_ready(session, none_url + "/models", procs["none"])
            for name in targets:
                await wait_ready(session, f"http://127.0.0.1:{ports[name]}/healthz", procs[name])
            urls = {"direct": upstream + "/chat/completions",
                    **{name: f"http://127.0.0.1:{ports[name]}/v1/chat/completions" for name in targets}}
            payload = orjson.dumps({**BODY, "stream": True})
            print(f"a reply of {PACED_SENTENCES} sentences ({len(paced_reply().split())} word chunks) streamed over "
                  f"{PACED_SECONDS:g} s, on a turn with a tool result; {args.stream_rounds} rounds, targets "
                  f"interleaved; load average {os.getloadavg()[0]:.2f} at start")
            for url in urls.values():  # warm-up
                await timed_stream(session, url, payload)
            got: dict[str, list[tuple[float, float, str, float]]] = {name: [] for name in urls}
            for _ in range(args.stream_rounds):
                for name, url in urls.items():
                    got[name].append(await timed_stream(session, url, payload))
    finally:
        stop_all(procs.values())
    med = {name: (statistics.median(x[0] for x in rows), statistics.median(x[1] for x in rows)) for name, rows in got.items()}
    d_first, d_total = med["direct"]
    print(f"\n  {'target':<28}{'held':>11}{'TTFT ms':>10}{'added':>9}{'total ms':>10}{'added':>9}"
          f"{'last token to [DONE]':>22}   (medians)")
    verdicts = []
    for name, (first, total) in med.items():
        held = got[name][-1][2]
        added = "" if name == "direct" else f"{first - d_first:>+9.1f}"
        added_total = "" if name == "direct" else f"{total - d_total:>+9.1f}"
        tail = statistics.median(x[3] for x in got[name])
        print(f"  {name:<28}{held:>11}{first:>10.1f}{added:>9}{total:>10.1f}{added_total:>9}{tail:>22.2f}")
        if name in ("structural", "default", "default + middleware model"):
            if held == "sentences":
                verdicts += [(first <= d_first + sentence_ms + 5,
                              f"{name}: TTFT {first:.1f} ms <= direct {d_first:.1f} + one sentence {sentence_ms:.0f} + 5 ms"),
                             (total <= d_total + 5, f"{name}: total {total:.1f} ms <= direct {d_total:.1f} + 5 ms")]
            else:
                verdicts.append((None, f"{name}: held {held} (a refiner may ask rein's model): "
                                       f"': rein refining' at once, text after the refiners"))
    print("\ntargets (issue 10)" + "".join(
        f"\n  {'met   ' if ok else 'n/a   ' if ok is None else 'MISSED'} {text}" for ok, text in verdicts))
