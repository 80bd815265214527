"""The decision log: rows as the issue lists them, content only on opt-in, batched off the
request's path, nothing lost on close, "what came next" filled by the next turn, retention,
PostgreSQL for replicas, and export of wrong decisions as dialogues the CLI reads."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from middleware.cli import main
from middleware.decisions import DecisionLog, Filters, open_decision_store
from middleware.decisions.export import export_wrong
from middleware.rule_modes import Hit
from policies.chat_model import ModelRequest
from policies.loader import load_policy
from policies.messages import assistant, parse_messages
from refiners.store import tenant
from tests.pg import postgres_dsn  # noqa: F401  (session fixture)

POLICY = load_policy("default")
DIALOGUE = [
    {"role": "system", "content": "You are an airline agent."},
    {"role": "user", "content": "Please look up reservation ZFA04Y for me."},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_reservation_details",
                                                      "arguments": "{\"reservation_id\": \"ZFA04Y\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: reservation ZFA04Y not found in the system"},
]
TOOLS = [{"type": "function", "function": {"name": "get_reservation_details", "parameters": {"type": "object"}}}]
EVIDENCE = "get_reservation_details returned: Error: reservation ZFA04Y not found in the system"


def request(messages=DIALOGUE):
    return ModelRequest(messages=parse_messages(messages), tools=TOOLS, model="m")


def failure_hit(mode="shadow"):
    return Hit("detect:tool_failure", mode, "diagnose", EVIDENCE, "Tell the user the lookup failed: " + EVIDENCE)


def refine_hit():
    return Hit("refine:factuality/amount", "act", "refine", "fixed $24.50 → $42.50 (the tool result: total = 42.5)",
               before="It shipped. It came to $24.50.", after="It shipped. It came to $42.50.")


@pytest.fixture
def store(tmp_path):
    return open_decision_store(str(tmp_path / "decisions.db"))


def test_a_fired_rule_is_one_row_with_what_the_issue_lists(store):
    log = DecisionLog(store, content=True)
    with tenant("team-a"):
        log.turn(POLICY, request(), [failure_hit(), refine_hit()], assistant("Sorry, it failed."), 0.42)
    log.turn(POLICY, request([DIALOGUE[1]]), [], assistant("hi"), 0.1)  # clean: counted, not logged
    log.close()
    rows = {r["rule"]: r for r in store.page(Filters())}
    assert set(rows) == {"detect:tool_failure", "refine:factuality/amount"}
    d = rows["detect:tool_failure"]
    assert (d["tenant"], d["policy"], d["mode"], d["stage"], d["turn"], d["rein_ms"]) == \
        ("team-a", "default", "shadow", "diagnose", 4, 0.42)
    assert d["evidence"] == EVIDENCE and json.loads(d["evidence_at"]) == [3]  # the tool result it quotes
    assert d["plan"].startswith("Tell the user") and d["at"] <= time.time() and d["conversation"]
    assert json.loads(rows["refine:factuality/amount"]["diff"]) == [["It came to $24.50.", "It came to $42.50."]]
    assert store.requests(Filters()) == 2
    counts = {r["rule"]: r for r in store.per_rule(Filters())}
    assert counts["detect:tool_failure"]["share"] == 0.5
    assert oct(os.stat(store.path).st_mode & 0o777) == "0o600"
    dialogue = store.dialogue(d["request_id"])
    assert dialogue["messages"][3]["content"].startswith("Error") and dialogue["reply"]["message"]["content"]


def test_without_the_content_opt_in_no_message_text_is_kept(store, monkeypatch):
    monkeypatch.delenv("REIN_LOG_CONTENT", raising=False)
    log = DecisionLog(store)
    log.turn(POLICY, request(), [failure_hit(), refine_hit()], assistant("Sorry, it failed."), 0.4)
    log.close()
    rows = {r["rule"]: r for r in store.page(Filters())}
    d = rows["detect:tool_failure"]
    assert d["evidence"] is None and json.loads(d["evidence_at"]) == [3]
    assert "ZFA04Y" not in d["plan"] and d["plan"] == POLICY.error_type("tool_failure").plan  # the template
    assert json.loads(rows["refine:factuality/amount"]["diff"]) == [{"sentence": 2, "removed": 18, "added": 18}]
    assert store.dialogue(d["request_id"]) is None
    dump = json.dumps(store.page(Filters()))
    assert "ZFA04Y" not in dump and "24.50" not in dump


def test_writes_are_batched_off_the_callers_thread_and_close_loses_nothing(store):
    log = DecisionLog(store, content=False, flush_s=30)  # the timer never fires within the test
    seen_threads = set()
    add = store.add

    def spy(**kw):
        seen_threads.add(threading.current_thread().name)
        return add(**kw)
    store.add = spy
    for _ in range(300):  # past one batch (256): the writer wakes early
        log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.1)
    for _ in range(100):
        if store.count(Filters()) >= 256:
            break
        time.sleep(0.05)
    assert store.count(Filters()) >= 256 and seen_threads == {"rein-decisions"}
    log.close()  # the rest of the queue is written on a clean shutdown
    assert store.count(Filters()) == 300


def test_the_next_turn_fills_in_what_the_agent_did_next(store):
    log = DecisionLog(store, content=True)
    log.turn(POLICY, request(), [failure_hit()], assistant("Sorry, the lookup failed."), 0.3)
    later = DIALOGUE + [{"role": "assistant", "content": "Sorry, the lookup failed."},
                        {"role": "user", "content": "Try ZFA04X then."}]
    log.turn(POLICY, request(later), [], assistant("ok"), 0.1)
    log.close()
    (row,) = store.page(Filters())
    assert json.loads(row["next"]) == [{"role": "assistant", "text": "Sorry, the lookup failed."},
                                       {"role": "user", "text": "Try ZFA04X then."}]


def test_another_tenants_turn_is_not_this_conversations_next(store):
    log = DecisionLog(store, content=True)
    with tenant("team-a"):
        log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    with tenant("team-b"):
        log.turn(POLICY, request(DIALOGUE + [{"role": "user", "content": "again"}]), [], assistant("x"), 0.1)
    log.close()
    assert store.page(Filters())[0]["next"] is None


def test_retention_deletes_old_decisions(store):
    log = DecisionLog(store, content=True)
    log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    log.close()
    store._run(lambda ex: ex("UPDATE rein_decisions SET at = at - 40 * 86400"))
    log2 = DecisionLog(store, content=True, retention_days=30)
    log2.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    log2.close()
    assert store.count(Filters()) == 1


def test_a_sample_of_clean_requests_is_kept_when_asked(store):
    log = DecisionLog(store, sample=1.0)
    log.turn(POLICY, request([DIALOGUE[1]]), [], assistant("hi"), 0.1)
    log.close()
    (row,) = store.page(Filters())
    assert row["rule"] == "none" and store.per_rule(Filters()) == []


def test_filters_rule_glob_mode_tenant_time_verdict(store):
    log = DecisionLog(store, content=True)
    with tenant("team-a"):
        log.turn(POLICY, request(), [failure_hit("shadow")], assistant("x"), 0.3)
    with tenant("team-b"):
        log.turn(POLICY, request(), [refine_hit()], assistant("x"), 0.3)
    log.close()
    assert [r["rule"] for r in store.page(Filters(rule="detect:*"))] == ["detect:tool_failure"]
    assert [r["tenant"] for r in store.page(Filters(mode="act"))] == ["team-b"]
    assert store.count(Filters(tenant="team-a")) == 1
    assert store.count(Filters(since=time.time() + 60)) == 0
    first = store.page(Filters(rule="detect:tool_failure"))[0]
    assert store.mark(first["id"], "wrong", "the user never gave that id")
    assert [r["rule"] for r in store.page(Filters(verdict="wrong"))] == ["detect:tool_failure"]
    assert store.count(Filters(verdict="unmarked")) == 1
    assert {r["rule"]: r["wrong"] for r in store.per_rule(Filters())}["detect:tool_failure"] == 1


def test_export_writes_wrong_decisions_as_dialogues_rein_reads(store, tmp_path, capsys):
    log = DecisionLog(store, content=True)
    log.turn(POLICY, request(), [failure_hit(), refine_hit()], assistant("x"), 0.3)
    log.close()
    for row in store.page(Filters()):
        store.mark(row["id"], "wrong", "not a failure")
    out = tmp_path / "regressions"
    assert main(["decisions", "--decision-db", store.path, "export", "--wrong", str(out)]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert "trajectories.json" in files and len(files) == 3
    detect = next(out.glob("detect-tool_failure-*.json"))
    refine = next(out.glob("refine-factuality-amount-*.json"))
    assert json.loads(refine.read_text())["draft"] == "It shipped. It came to $24.50."
    capsys.readouterr()
    assert main(["diagnose", "--policy", "structural", str(detect)]) == 0
    assert "tool_failure" in capsys.readouterr().out  # the regression reproduces the finding
    assert main(["refine", "--policy", "structural", str(refine)]) == 0
    corpus = json.loads((out / "trajectories.json").read_text())
    assert len(corpus["trajectories"]) == 2 and corpus["tools"][0]["function"]["name"] == "get_reservation_details"


def test_export_without_content_says_why_it_wrote_nothing(store, tmp_path):
    log = DecisionLog(store, content=False)
    log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    log.close()
    store.mark(store.page(Filters())[0]["id"], "wrong")
    written, skipped = export_wrong(store, tmp_path / "out")
    assert written == [] and "REIN_LOG_CONTENT=1" in skipped[0]


def test_cli_lists_shows_and_marks(store, capsys):
    log = DecisionLog(store, content=True)
    log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    log.close()
    db = ["decisions", "--decision-db", store.path]
    assert main([*db, "list", "--rule", "detect:*"]) == 0
    line = capsys.readouterr().out.strip()
    decision_id = line.split()[0]
    assert "detect:tool_failure" in line
    assert main([*db, "mark", decision_id, "wrong", "--note", "expected"]) == 0
    assert main([*db, "show", decision_id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["verdict"] == "wrong" and shown["note"] == "expected" and shown["dialogue"]["messages"]
    assert main([*db, "show", "nope"]) == 1


def test_postgres_store_is_shared_by_replicas(postgres_dsn):  # noqa: F811
    one, two = open_decision_store(postgres_dsn), open_decision_store(postgres_dsn)
    log = DecisionLog(one, content=True)
    with tenant("pg-a"):
        log.turn(POLICY, request(), [failure_hit()], assistant("x"), 0.3)
    log.close()
    rows = two.page(Filters(tenant="pg-a"))
    assert [r["rule"] for r in rows] == ["detect:tool_failure"]
    assert two.mark(rows[0]["id"], "wrong", "seen from the other replica")
    assert one.get(rows[0]["id"])["verdict"] == "wrong"
    assert two.requests(Filters(tenant="pg-a")) == 1 and two.dialogue(rows[0]["request_id"])["messages"]
    one.close(), two.close()


def test_the_proxy_writes_what_is_queued_when_it_shuts_down(tmp_path, monkeypatch):
    """A clean shutdown (the app's lifespan ending) writes the queue: nothing flushed it before."""
    from starlette.testclient import TestClient

    from middleware.config import Settings
    from middleware.engine import Engine
    from middleware.models import ScriptedModel
    from middleware.proxy import create_app
    from tests.decision_traffic import FAILED, TOOLS as SHOP_TOOLS

    settings = Settings(policy="structural", shadow=True, decision_db=str(tmp_path / "d.db"))
    log = DecisionLog.from_settings(settings)
    log.flush_s = 3600  # the writer never wakes on its own during the test
    engine = Engine(ScriptedModel(["Sorry."], cycle=True), settings.policy, decisions=log, shadow=True)
    with TestClient(create_app(settings, engine)) as client:
        r = client.post("/v1/chat/completions", json={"model": "m", "messages": FAILED, "tools": SHOP_TOOLS})
        assert r.headers["x-rein-would-plan"] == "detect:tool_failure"
        assert open_decision_store(settings.decision_db).count(Filters()) == 0  # still queued
    assert [d["rule"] for d in open_decision_store(settings.decision_db).page(Filters())] == ["detect:tool_failure"]


def test_each_rule_that_fired_is_a_span_event_with_its_mode():
    import asyncio

    from middleware.engine import Engine
    from middleware.models import ScriptedModel
    from tests.decision_traffic import FAILED, TOOLS as SHOP_TOOLS
    from tests.spans import recording

    exporter = recording()
    exporter.clear()
    engine = Engine(ScriptedModel(["Sorry."]), "structural", shadow=True)
    request = ModelRequest(messages=parse_messages(FAILED), tools=SHOP_TOOLS, model="m")

    async def run():
        from middleware import tracing
        with tracing.request_span("structural"):
            await engine.pipeline().run(request)
    asyncio.run(run())
    events = [e for s in exporter.get_finished_spans() for e in s.events if e.name == "rein.rule"]
    assert [(e.attributes["rein.rule.id"], e.attributes["rein.rule.mode"]) for e in events] == \
        [("detect:tool_failure", "shadow")]


def test_turns_the_log_could_not_write_are_counted_on_metrics(tmp_path):
    """A write fails off the request's path, where nobody would see it: /metrics counts the lost turns."""
    from starlette.testclient import TestClient

    from middleware.config import Settings
    from middleware.engine import Engine
    from middleware.models import ScriptedModel
    from middleware.proxy import create_app
    from tests.decision_traffic import FAILED, TOOLS as SHOP_TOOLS

    def lost(text: str) -> float:
        line = next((l for l in text.splitlines() if l.startswith("rein_decision_log_lost_total")), "x 0")
        return float(line.split()[-1])

    settings = Settings(policy="structural", shadow=True, decision_db=str(tmp_path / "d.db"))
    log = DecisionLog.from_settings(settings)
    log.flush_s = 3600
    engine = Engine(ScriptedModel(["Sorry."], cycle=True), settings.policy, decisions=log, shadow=True)
    with TestClient(create_app(settings, engine)) as client:
        before = lost(client.get("/metrics").text)

        def broken(**rows):
            raise OSError("disk full")

        log.store.add = broken
        for _ in range(2):
            client.post("/v1/chat/completions", json={"model": "m", "messages": FAILED, "tools": SHOP_TOOLS})
        log.flush()
        assert log.failures == 1 and log.lost == 2 and "OSError: disk full" in log.errors[-1]
        assert lost(client.get("/metrics").text) == before + 2
