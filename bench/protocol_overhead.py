"""rein's added latency per wire format: chat completions, OpenAI Responses, Anthropic Messages.

The same agent turn (system prompt, a tool call and its result, two tools) is written in each
protocol and sent, round-robin with the fake upstream reached directly, to one ``rein serve`` per
policy; plain and streamed. added = target - direct at p50/p99; "over chat" is the protocol's p50
minus the chat-completions route's p50 under the same policy: what the translation costs.

    python bench/proxy_overhead.py --protocols               # about a minute
    python bench/proxy_overhead.py --protocols --rounds 300

Target (issue 11): translation adds <= 0.2 ms p50 over the chat completions path.
"""
from __future__ import annotations

import time
from typing import Any

import orjson

import proxy_overhead as po

_SYSTEM = po.BODY["messages"][0]["content"]
_TOOLS = po.BODY["tools"]
RESPONSES = {
    "model": "gpt-bench", "instructions": _SYSTEM, "temperature": 0.2,
    "input": [{"role": "user", "content": "Where is my order A1734? It was due on Monday."},
              {"type": "function_call", "call_id": "call_1", "name": "get_order", "arguments": "{\"order_id\": \"A1734\"}"},
              {"type": "function_call_output", "call_id": "call_1",
               "output": "{\"status\": \"shipped\", \"carrier\": \"DHL\", \"eta\": \"Thursday\"}"}],
    "tools": [{"type": "function", **t["function"]} for t in _TOOLS],
}
MESSAGES = {
    "model": "gpt-bench", "system": _SYSTEM, "max_tokens": 256, "temperature": 0.2,
    "messages": [{"role": "user", "content": "Where is my order A1734? It was due on Monday."},
                 {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_order",
                                                    "input": {"order_id": "A1734"}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                               "content": "{\"status\": \"shipped\", \"carrier\": \"DHL\", "
                                                          "\"eta\": \"Thursday\"}"}]}],
    "tools": [{"name": t["function"]["name"], "description": t["function"]["description"],
               "input_schema": t["function"]["parameters"]} for t in _TOOLS],
}
ROUTES = {"chat": ("/v1/chat/completions", po.BODY), "responses": ("/v1/responses", RESPONSES),
          "messages": ("/v1/messages", MESSAGES)}


async def one(session, url: str, payload: bytes, own: list[float] | None) -> float:
    t = time.perf_counter()
    async with session.post(url, data=payload, headers={"content-type": "application/json",
                                                        "authorization": "Bearer sk-bench"}) as r:
        body = await r.read()  # a stream is read to its end
        if r.status != 200:
            raise RuntimeError(f"{url}: HTTP {r.status}: {body[:300]!r}")
        if own is not None and "x-rein-overhead-ms" in r.headers:
            own.append(float(r.headers["x-rein-overhead-ms"]))
    return (time.perf_counter() - t) * 1000


async def measure(session, targets: dict[str, tuple[str, dict[str, Any]]], stream: bool, rounds: int):
    payloads = {name: orjson.dumps({**body, "stream": stream}) for name, (_, body) in targets.items()}
    lat: dict[str, list[float]] = {name: [] for name in targets}
    own: dict[str, list[float]] = {name: [] for name in targets}
    for i in range(rounds + 20):
        for name, (url, _) in targets.items():
            warm = i < 20
            ms = await one(session, url, payloads[name], None if warm else own[name])
            if not warm:
                lat[name].append(ms)
    return lat, own


def report(lat, own, stream: bool, policies: list[str]) -> list[tuple[bool, str]]:
    d50, d99 = po.pct(lat["direct"], 0.5), po.pct(lat["direct"], 0.99)
    print(f"\n{'streaming' if stream else 'non-streaming'} (latency to the last byte), ms")
    print(f"  {'target':<30}{'p50':>8}{'p99':>8}{'added p50':>11}{'added p99':>11}{'own p50/p99':>14}{'over chat':>11}")
    verdicts = []
    for name, xs in lat.items():
        p50, p99 = po.pct(xs, 0.5), po.pct(xs, 0.99)
        row = f"  {name:<30}{p50:>8.2f}{p99:>8.2f}"
        if name != "direct":
            mine = f"{po.pct(own[name], 0.5):.2f}/{po.pct(own[name], 0.99):.2f}" if own[name] else ""
            policy, protocol = name.split(" ")[1], name.split(" ")[2]
            chat = po.pct(lat[f"rein {policy} chat"], 0.5)
            over = "" if protocol == "chat" else f"{p50 - chat:>+11.2f}"
            row += f"{p50 - d50:>+11.2f}{p99 - d99:>+11.2f}{mine:>14}{over}"
            if protocol != "chat":
                ok = p50 - chat <= 0.2
                verdicts.append((ok, f"{name} {'streamed' if stream else 'plain'}: {p50 - chat:+.2f} ms p50 over chat "
                                     "(target <= 0.2)"))
        print(row)
    print(f"  (direct stdev {po.statistics.pstdev(lat['direct']):.2f} ms: the noise floor of 'added')")
    return verdicts


async def run(args) -> None:
    up_port = po.free_port()
    upstream = f"http://127.0.0.1:{up_port}/v1"
    policies = ["passthrough", "structural"]
    procs = {"upstream": po.start(["tests/fake_upstream.py", "--port", str(up_port)])}
    ports = {p: po.free_port() for p in policies}
    for p in policies:
        procs[p] = po.start(["-m", "middleware.cli", "serve", "--port", str(ports[p]), "--upstream", upstream,
                             "--policy", p, "--log-level", "warning"])
    try:
        async with po.fresh_session() as session:
            await po.wait_ready(session, upstream + "/models", procs["upstream"])
            for p in policies:
                await po.wait_ready(session, f"http://127.0.0.1:{ports[p]}/healthz", procs[p])
        targets = {"direct": (upstream + "/chat/completions", po.BODY)}
        for p in policies:
            for protocol, (path, body) in ROUTES.items():
                targets[f"rein {p} {protocol}"] = (f"http://127.0.0.1:{ports[p]}{path}", body)
        print(f"{args.rounds} rounds at concurrency 1, round-robin; load average {po.os.getloadavg()[0]:.2f} at start")
        verdicts = []
        for stream in (False, True):
            async with po.fresh_session() as s:
                lat, own = await measure(s, targets, stream, args.rounds)
            verdicts += report(lat, own, stream, policies)
        print("\ntargets (issue 11)" + "".join(f"\n  {'met   ' if ok else 'MISSED'} {t}" for ok, t in verdicts))
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(10)
            except po.subprocess.TimeoutExpired:
                proc.kill()
