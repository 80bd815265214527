"""What bench/real_dialogues.py prints: one corpus's figures and listings, and the table of every
corpus with a total."""
from __future__ import annotations

from typing import Any

from real_corpora import table
from real_replay import percentile, share


def show(result: dict[str, Any], verbose: bool = False) -> None:
    pct = lambda x: f"{100 * x:.1f}%"  # noqa: E731
    print(f"== {result['data']}: {result['trajectories']} trajectories, {result['replies']} agent replies, "
          f"{result['user_cuts']} user turns, {result['tool_cuts']} cuts after tool results "
          f"({result['seconds']:.1f} s)")
    for name, p in result["policies"].items():
        rc = p["replies_changed"]
        print(f"\n-- {name}" + ("  (rein's model answers 'none' to every call)" if name != "structural" else ""))
        print(f"replies changed: {rc['count']}/{rc['of']} ({pct(rc['share'])})")
        for c in rc["list"]:
            print(f"  {c['trajectory']} (reward {c.get('reward')}) msg {c['index']}: {c['feedback'][:300]}")
            for before, after in c["changes"]:
                print(f"      - {before[:220]!r}\n      + {after[:220]!r}")
        a = p["alarms"]
        print(f"alarms per type      user turns ({a['user_cuts']})   after tool results ({a['tool_cuts']})")
        for label in sorted(set(a["user"]) | set(a["tool"])):
            u, t = a["user"].get(label, 0), a["tool"].get(label, 0)
            print(f"  {label:<40} {u:>4} ({pct(share(u, a['user_cuts'])):>5})"
                  f"  {t:>4} ({pct(share(t, a['tool_cuts'])):>5})")
        if not a["user"] and not a["tool"]:
            print("  (none)")
        if verbose:
            for x in a["list"]:
                print(f"    {x['trajectory']} msg {x['index']} [{x['cut']}] {x['label']}: {x['evidence'][:200]}")
        tf = p["tool_failure"]
        print(f"tool_failure vs the reference rule: precision {tf['precision']:.3f} recall {tf['recall']:.3f} "
              f"(tp {tf['tp']} fp {tf['fp']} fn {tf['fn']} tn {tf['tn']})")
        for kind in ("misses", "false_alarms"):
            for x in tf[kind][: None if verbose else 8]:
                print(f"    {kind[:-2] if kind == 'misses' else 'false alarm'}: {x['trajectory']} msg {x['index']} "
                      f"[{x['cut']}] {x['evidence'][:160]!r}")
        print(f"stale loop flags: {p['stale_loops']['count']}")
        for x in p["stale_loops"]["list"]:
            print(f"    {x['trajectory']} msg {x['index']} [{x['cut']}]: {x['evidence'][:160]}")
        tm = p["time_ms"]
        print(f"rein time per turn (diagnose + plan + refine, in-process): p50 {tm['p50']:.2f} ms, "
              f"p99 {tm['p99']:.2f} ms, max {tm['max']:.2f} ms over {tm['turns']} turns")
        print("  request KB    turns   p50 ms   p99 ms   max ms")
        for k, f in tm["by_kb"].items():
            print(f"  {k:<10} {f['turns']:>7} {f['p50']:>8.2f} {f['p99']:>8.2f} {f['max']:>8.2f}")
        print("  slowest: " + "; ".join(f"{w['trajectory']} msg {w['index']} {w['ms']:.2f} ms ({w['kb']:.0f} KB)"
                                        for w in tm.get("worst", [])))
        cm = p["cpu_ms"]
        print(f"  CPU time of rein's thread: p50 {cm['p50']:.2f} ms, p99 {cm['p99']:.2f} ms, max {cm['max']:.2f} ms; "
              "slowest: " + "; ".join(f"{w['trajectory']} msg {w['index']} {w['ms']:.2f} ms" for w in cm["worst"][:3]))
        if "pipeline" in p:
            pl = p["pipeline"]
            print(f"pipeline in front of the replayed agent, {pl['turns']} turns: client got other than the agent "
                  f"wrote — plan planted {pl['planted']['count']} ({pct(pl['planted']['share'])}), reply changed "
                  f"{pl['changed']['count']} ({pct(pl['changed']['share'])}), stream held {pl['held']['count']} "
                  f"({pct(pl['held']['share'])}), streamed reply changed {pl['stream_changed']['count']}; "
                  f"rein overhead p50 {pl['overhead_ms']['p50']:.2f} ms p99 {pl['overhead_ms']['p99']:.2f} ms")
            if verbose:
                for x in pl["planted"]["list"]:
                    print(f"    planted: {x['trajectory']} msg {x['index']} {x['labels']}: {(x['plan'] or '')[:160]}")
    print(f"\n== targets on {result.get('corpus', result['data'])} (issue 19)")
    for t in result["targets"]:
        value = f"{100 * t['value']:.2f}%" if t.get("pct") else (f"{t['value']:.3f}" if isinstance(t["value"], float)
                                                                 else str(t["value"]))
        mark = "" if t["ok"] is None else ("  met" if t["ok"] else "  NOT MET")
        print(f"  {t['policy']:<11} {t['what']:<42} {value:>18}   target {t['target']}{mark}")


def summary(results: list[dict[str, Any]]) -> str:
    """One line per corpus and policy, and a total over the corpora: the figures the issue's targets name."""
    rows = []
    for name in results[0]["policies"] if results else ():
        per = [(r["corpus"], r["policies"][name]) for r in results if name in r["policies"]]
        total = {
            "replies_changed": {k: sum(p["replies_changed"][k] for _, p in per) for k in ("count", "of")},
            "ambiguity": {k: sum(p["ambiguity"][k] for _, p in per) for k in ("user_turns", "of")},
            "tool_failure": {k: sum(p["tool_failure"][k] for _, p in per) for k in ("tp", "fp", "fn")},
            **{k: (lambda xs: {"p99": percentile(xs, .99), "max": max(xs, default=0.0), "turns": len(xs)})(
                [x for _, p in per for x in p[k]["samples"]]) for k in ("time_ms", "cpu_ms")},
        }
        tf = total["tool_failure"]
        tf["precision"] = share(tf["tp"], tf["tp"] + tf["fp"]) if tf["tp"] + tf["fp"] else 1.0
        tf["recall"] = share(tf["tp"], tf["tp"] + tf["fn"]) if tf["tp"] + tf["fn"] else 1.0
        rows += [(f"{c} / {name}", p) for c, p in per] + [(f"total / {name}", total)]
    pct = lambda n, d: f"{n}/{d} ({100 * share(n, d):.2f}%)"  # noqa: E731
    return table(rows, [
        ("replies changed", "0", lambda p: f"{p['replies_changed']['count']}/{p['replies_changed']['of']}"),
        ("ambiguity (user turns)", "<= 0.2%", lambda p: pct(p["ambiguity"]["user_turns"], p["ambiguity"]["of"])),
        ("tool_failure P / R", ">= 0.98", lambda p: f"{p['tool_failure']['precision']:.3f} / {p['tool_failure']['recall']:.3f}"),
        ("turns", "", lambda p: str(p["time_ms"]["turns"])),
        ("p99 ms", "<= 2", lambda p: f"{p['time_ms']['p99']:.2f}"),
        ("max ms", "<= 20", lambda p: f"{p['time_ms']['max']:.2f}"),
        ("cpu p99 / max ms", "", lambda p: f"{p['cpu_ms']['p99']:.2f} / {p['cpu_ms']['max']:.2f}"),
    ])
