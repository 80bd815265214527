"""Shadow mode on real trajectories (issue 22): the whole pipeline in front of an agent that
replays the recorded replies, once acting and once in shadow, each with a decision log. Under
shadow the client must get exactly what the agent wrote (0 replies changed, 0 plans planted, 0
streams held), and the shadow log must hold exactly the decisions the acting policy makes (the same
rule on the same turn of the same conversation). Also prints rein's time per turn in both arms
(same run): shadow should cost no more than acting. Part of bench/real_dialogues.py (--shadow).

    python bench/real_dialogues.py --shadow --policy structural
"""
from __future__ import annotations

import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from middleware.decisions import DecisionLog, Filters, open_decision_store
from middleware.engine import Engine
from middleware.models.chunks import ChunkAccumulator
from middleware.models.testing import FunctionModel
from policies.chat_model import ModelRequest
from real_replay import percentile, recorded, same_message


def _logged(log: DecisionLog) -> Counter:
    log.close()
    rows, offset = [], 0
    while batch := log.store.page(Filters(), limit=5000, offset=offset):
        rows += batch
        offset += len(batch)
    return Counter((r["conversation"], r["turn"], r["rule"], r["stage"]) for r in rows)


async def shadow_replay(policy, rein_model, tools, trajs: list[Any]) -> dict[str, Any]:
    seen: dict[int, list[Any]] = {}  # what the agent was sent, per arm, in order

    def replay(arm: int):
        def answer(r: ModelRequest):
            seen.setdefault(arm, []).append(r)
            n, cut = r.extra["bench_case"]
            return recorded(trajs[n].raw[cut])
        return FunctionModel(answer, name="replay")

    with tempfile.TemporaryDirectory() as tmp:
        logs = [DecisionLog(open_decision_store(str(Path(tmp) / f"{arm}.db")), content=False, flush_s=0.2)
                for arm in ("act", "shadow")]
        pipelines = [Engine(agent=replay(i), policy=policy, rein_model=rein_model, decisions=log,
                            shadow=i == 1).pipeline() for i, log in enumerate(logs)]
        figures: Counter = Counter()
        listed: dict[str, list[dict[str, Any]]] = {"changed": [], "planted": [], "held": []}
        rein_ms: dict[int, list[float]] = {0: [], 1: []}
        for n, tr in enumerate(trajs):
            for cut in sorted(tr.user_cuts + tr.tool_cuts):
                if cut >= len(tr.raw) or tr.raw[cut].get("role") != "assistant":
                    continue
                wrote = recorded(tr.raw[cut])
                request = ModelRequest(messages=tr.parsed[:cut], tools=tools, model="replay",
                                       extra={"bench_case": [n, cut]})
                where = {"trajectory": tr.name, "index": cut}
                figures["turns"] += 1
                for arm, pipeline in enumerate(pipelines):  # the two arms alternate: the same machine state
                    before = len(seen.get(arm, []))
                    started = time.perf_counter()
                    state = await pipeline.run(request)
                    rein_ms[arm].append((time.perf_counter() - started) * 1000 - state.get("upstream_ms", 0.0))
                    if arm == 0:
                        continue
                    if not same_message(state["final"].message, wrote):
                        figures["changed"] += 1
                        listed["changed"].append(where)
                    acc, end = ChunkAccumulator(), {}
                    async for kind, payload in pipeline.events(request):
                        if kind == "chunk":
                            acc.add(payload)
                        elif kind == "state":
                            end = payload
                    # The agent was asked once per run (no re-ask), with the dialogue and tools as they came.
                    sent = seen[1][before:]
                    if len(sent) != 2 or any(len(r.messages) != cut or r.tools != tools for r in sent):
                        figures["planted"] += 1
                        listed["planted"].append(where)
                    if (not wrote.tool_calls and not end.get("streamed")) or \
                            not same_message(acc.response().message, wrote):
                        figures["held"] += 1
                        listed["held"].append(where)
        acting, shadow = _logged(logs[0]), _logged(logs[1])
    # The acting arm ran each turn once (no stream): count each of its decisions twice (run + stream).
    acting_twice = Counter({k: 2 * v for k, v in acting.items()})
    return {"turns": figures["turns"], "changed": figures["changed"], "planted": figures["planted"],
            "held": figures["held"], "listed": listed,
            "decisions": {"acting": sum(acting.values()), "shadow": sum(shadow.values()) // 2,
                          "same": acting_twice == shadow,
                          "only_acting": sorted(str(k) for k in (acting_twice - shadow))[:10],
                          "only_shadow": sorted(str(k) for k in (shadow - acting_twice))[:10]},
            "rein_ms": {arm: {"p50": percentile(rein_ms[i], .5), "p99": percentile(rein_ms[i], .99)}
                        for i, arm in enumerate(("act", "shadow"))}}


def show_shadow(name: str, s: dict[str, Any]) -> None:
    d = s["decisions"]
    print(f"shadow mode, {s['turns']} replayed turns: replies changed {s['changed']}, plans planted {s['planted']}, "
          f"streams held or changed {s['held']}; decisions logged acting {d['acting']}, shadow {d['shadow']} "
          f"({'the same' if d['same'] else 'DIFFERENT'}); rein's time p50/p99 acting "
          f"{s['rein_ms']['act']['p50']:.2f}/{s['rein_ms']['act']['p99']:.2f} ms, shadow "
          f"{s['rein_ms']['shadow']['p50']:.2f}/{s['rein_ms']['shadow']['p99']:.2f} ms")
    for key in ("only_acting", "only_shadow"):
        for k in d[key]:
            print(f"    {key}: {k}")
    for key, rows in s["listed"].items():
        for x in rows[:5]:
            print(f"    {key}: {x['trajectory']} msg {x['index']}")


def shadow_targets(name: str, s: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"policy": name, "what": "shadow: replies changed / plans planted / streams held",
             "value": f"{s['changed']} / {s['planted']} / {s['held']}", "target": "0 / 0 / 0",
             "ok": s["changed"] == s["planted"] == s["held"] == 0},
            {"policy": name, "what": "shadow: log holds the acting policy's decisions",
             "value": f"{s['decisions']['shadow']} of {s['decisions']['acting']}", "target": "exactly",
             "ok": s["decisions"]["same"]}]


async def shadow_corpus(path: Path, policies: tuple[str, ...], load, none_reply) -> list[dict[str, Any]]:
    """Every policy on one corpus; prints each and returns the targets' rows (``load`` and
    ``none_reply`` are real_dialogues.py's corpus reader and rein's "nothing to do" model)."""
    from policies.loader import load_policy

    tools, trajs = load(path)
    rows = []
    for name in policies:
        result = await shadow_replay(load_policy(name), FunctionModel(none_reply, name="none"), tools, trajs)
        print(f"-- {path.parent.name} / {name}")
        show_shadow(name, result)
        rows += shadow_targets(name, result)
    return rows
