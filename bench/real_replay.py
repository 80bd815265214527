"""The whole pipeline in front of an agent that replays the recorded replies: what the client got
that the agent did not write (a plan planted, a reply changed, a stream held). Part of
bench/real_dialogues.py."""
from __future__ import annotations

import time
from collections import Counter
from typing import Any

from middleware.engine import Engine
from middleware.models.chunks import ChunkAccumulator
from middleware.models.testing import FunctionModel
from policies.messages import AssistantMessage
from policies.chat_model import ModelRequest


def share(n: int, d: int) -> float:
    return n / d if d else 0.0


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def recorded(raw: dict[str, Any]) -> AssistantMessage:
    return AssistantMessage.model_validate({k: v for k, v in raw.items() if k in ("role", "content", "tool_calls")})


def same_message(a: AssistantMessage, b: AssistantMessage) -> bool:
    calls = lambda m: [(c.function.name, c.function.arguments) for c in m.tool_calls or []]  # noqa: E731
    return (a.content or "") == (b.content or "") and calls(a) == calls(b)


async def replay_pipeline(policy, rein_model, tools, trajs: list[Any]) -> dict[str, Any]:
    # The request carries which recorded prefix it is (an unknown field passes through rein untouched),
    # so the agent answers the same whatever rein planted in the messages.
    agent = FunctionModel(lambda r: recorded(trajs[r.extra["bench_case"][0]].raw[r.extra["bench_case"][1]]),
                          name="replay")
    pipeline = Engine(agent=agent, policy=policy, rein_model=rein_model).pipeline()
    figures = Counter()
    listed: dict[str, list[dict[str, Any]]] = {"planted": [], "changed": [], "held": [], "stream_changed": []}
    overhead: list[float] = []
    for n, tr in enumerate(trajs):
        for cut in sorted(tr.user_cuts + tr.tool_cuts):
            if cut >= len(tr.raw) or tr.raw[cut].get("role") != "assistant":
                continue
            wrote = recorded(tr.raw[cut])
            request = ModelRequest(messages=tr.parsed[:cut], tools=tools, model="replay",
                                   extra={"bench_case": [n, cut]})
            where = {"trajectory": tr.name, "index": cut}
            started = time.perf_counter()
            state = await pipeline.run(request)
            overhead.append((time.perf_counter() - started) * 1000 - state.get("upstream_ms", 0.0))
            figures["turns"] += 1
            if state["diagnosis"].plan or state.get("rechecked"):
                figures["planted"] += 1
                diagnosis = state["diagnosis"]
                listed["planted"].append({**where, "plan": diagnosis.plan, "labels": diagnosis.header()})
            if not same_message(state["final"].message, wrote):
                figures["changed"] += 1
                listed["changed"].append({**where, "final": state["final"].message.content})
            acc, end = ChunkAccumulator(), {}
            async for kind, payload in pipeline.events(request):
                if kind == "chunk":
                    acc.add(payload)
                elif kind == "state":
                    end = payload
            if not wrote.tool_calls and not end.get("streamed"):
                figures["held"] += 1
                listed["held"].append(where)
            if not same_message(acc.response().message, wrote):
                figures["stream_changed"] += 1
                listed["stream_changed"].append(where)
    turns = figures["turns"]
    return {"turns": turns, **{k: {"count": figures[k], "share": share(figures[k], turns), "list": listed[k]}
                               for k in listed},
            "overhead_ms": {"p50": percentile(overhead, .5), "p99": percentile(overhead, .99),
                            "max": max(overhead, default=0.0)}}
