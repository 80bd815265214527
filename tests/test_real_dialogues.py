"""Issues 9 and 19's targets on every real corpus under ../shared/data/, measured by bench/real_dialogues.py.

rein must not make a working agent worse: on real trajectories of every domain there (tau-bench
airline: 100 GPT-4o trajectories, JSON tool results; AgentDojo banking and messaging: 300
gpt-4o-mini conversations, YAML tool results, real tool errors, planted injections), under
`structural` and under `default` (rein's own model answering "none", so only rein's rules act), it
changes no reply of a trajectory the agent got right, alarms an ambiguity on at most 0.2% of user
turns, never flags a loop that has ended, and finds tool failures with precision and recall >= 0.98
against a plain rule (bench/real_rules.py `reference_failure`). The data stays outside the repository.
"""
from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "real_dialogues.py"
DATA = Path(__file__).resolve().parents[2] / "shared/data"
DEV = DATA / "tau-bench-airline/dev.json"
CORPORA = sorted(DATA.glob("*/dev.json")) if DATA.is_dir() else []
POLICIES = ("structural", "default")


@functools.cache
def _bench():
    spec = importlib.util.spec_from_file_location("rein_bench_real_dialogues", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


_MEASURED: dict[Path, dict] = {}


@pytest.fixture(scope="module", params=CORPORA or [None], ids=lambda p: p.parent.name if p else "no-data")
def figures(request):
    path = request.param
    if path is None or not path.exists():
        pytest.skip(f"no real corpus under {DATA}; the data lives outside the repository")
    # The whole-pipeline replay is the bench's to print; the targets need the in-process passes only.
    if path not in _MEASURED:
        _MEASURED[path] = _bench().measure(path, POLICIES, replay=False)
    return _MEASURED[path]


def _examples(rows: list[dict], render, n: int = 5) -> str:
    return "\n".join(render(r) for r in rows[:n])


def _change(c: dict) -> str:
    pairs = "; ".join(f"{b[:80]!r} -> {a[:80]!r}" for b, a in c["changes"][:2])
    return f"  {c['trajectory']} msg {c['index']}: {pairs} ({c['feedback'][:120]})"


def _alarm(a: dict) -> str:
    return f"  {a['trajectory']} msg {a['index']} [{a['cut']}] {a.get('label', '')}: {a['evidence'][:120]}"


def test_the_corpus_is_cut_into_every_case(figures):
    assert figures["trajectories"] >= 100 and figures["replies"] >= 250
    assert figures["user_cuts"] >= 300 and figures["tool_cuts"] >= 600
    if figures["corpus"] == "tau-bench-airline":
        assert (figures["trajectories"], figures["replies"]) == (100, 760)


@pytest.mark.parametrize("policy", POLICIES)
def test_no_reply_of_a_working_agent_is_changed(figures, policy):
    rc = figures["policies"][policy]["replies_changed"]
    right = [c for c in rc["list"] if c.get("reward") == 1.0]
    assert not right, (f"{policy}: {len(right)} replies changed in trajectories the agent got right, "
                       f"e.g.\n{_examples(right, _change)}")
    assert rc["share"] <= 0.005, f"{policy}: {rc['count']}/{rc['of']} replies changed\n{_examples(rc['list'], _change)}"


@pytest.mark.parametrize("policy", POLICIES)
def test_ambiguity_alarms_at_most_a_fifth_of_a_percent_of_user_turns(figures, policy):
    amb = figures["policies"][policy]["ambiguity"]
    alarms = [a for a in figures["policies"][policy]["alarms"]["list"]
              if a["label"].startswith("ambiguous_request") and a["cut"] == "user"]
    assert amb["share"] <= 0.002, (f"{policy}: ambiguity alarms on {amb['user_turns']}/{amb['of']} user turns "
                                   f"({100 * amb['share']:.1f}%), e.g.\n{_examples(alarms, _alarm)}")


@pytest.mark.parametrize("policy", POLICIES)
def test_no_stale_loop_flag(figures, policy):
    stale = figures["policies"][policy]["stale_loops"]
    assert stale["count"] == 0, f"{policy}: {stale['count']} stale loop flags:\n{_examples(stale['list'], _alarm)}"


@pytest.mark.parametrize("policy", POLICIES)
def test_tool_failure_precision_and_recall(figures, policy):
    tf = figures["policies"][policy]["tool_failure"]
    summary = (f"{policy}: precision {tf['precision']:.3f} recall {tf['recall']:.3f} "
               f"(tp {tf['tp']} fp {tf['fp']} fn {tf['fn']})")
    assert tf["precision"] >= 0.98, f"{summary}; false alarms:\n{_examples(tf['false_alarms'], _alarm)}"
    assert tf["recall"] >= 0.98, f"{summary}; missed:\n{_examples(tf['misses'], _alarm)}"


# ---- the bench's own reference rules, on hand-made dialogues (no data needed) ----------------
def _call(name: str, args: str = "{}", id: str = "call_1") -> dict:
    return {"role": "assistant", "content": None,
            "tool_calls": [{"id": id, "type": "function", "function": {"name": name, "arguments": args}}]}


def _result(content: str, id: str = "call_1") -> dict:
    return {"role": "tool", "tool_call_id": id, "content": content}


@pytest.mark.parametrize("content,failed", [
    ("Error: not enough seats on flight HAT229", True),
    ('{"status": 500, "message": "upstream inventory service unavailable"}', True),
    ('{"ok": false}', True), ('{"success": false, "reason": "x"}', True), ('{"error": {"code": 7}}', True),
    ('{"status_code": 404}', True),
    ('{"payment": {"status": "failed"}, "status": "paid"}', False), ('{"status": "available"}', False),
    ('{"error": null, "ok": true}', False), ("The flight is on time.", False), ("", False),
    ("ValueError: Transaction with ID 3 not found.", True), ("- id: 3\n  amount: 5\nKeyError: 'channel'", True),
    ("- subject: ValueError handling in Python", False),
])
def test_reference_error_shapes(content, failed):
    assert _bench().reference_error(content) is failed


def test_reference_failure_is_cleared_by_a_later_success_of_the_same_tool_only():
    bench = _bench()
    raw = [{"role": "user", "content": "book it"}, _call("book"), _result("Error: payment does not add up"),
           _call("calculate"), _result("305")]  # the same id again: paired by position, not by id
    assert bench.reference_failure(raw, len(raw))
    raw += [_call("book", '{"paid": 305}'), _result('{"reservation_id": "X1"}')]
    assert not bench.reference_failure(raw, len(raw))
    assert not bench.reference_failure(raw + [{"role": "user", "content": "thanks"}], len(raw) + 1)


def test_a_loop_flag_is_stale_once_the_latest_call_differs():
    bench = _bench()
    raw = [{"role": "user", "content": "hi"}, _call("search", '{"d": 1}'), _result("[]"),
           _call("search", '{"d":1}'), _result("[]")]
    assert not bench.stale_loop(raw, len(raw))
    raw += [_call("search", '{"d": 2}'), _result('[{"f": "HAT1"}]')]
    assert bench.stale_loop(raw, len(raw))
