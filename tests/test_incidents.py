"""`report_internal_error` reports for real, and its reply says what the failed result says went wrong
(issue 20, defect 11): a warning log line, `x-rein-incident`, `rein_incidents_total` on /metrics, and
the operator's webhook (a local server here); a not-found is not "something went wrong on our side"."""
from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from inception.incidents import failure_kind, last_failure
from middleware.config import Settings
from middleware.engine import Engine
from middleware.incidents import Incidents
from middleware.models import ScriptedModel, tool_call
from middleware.proxy import create_app
from policies.messages import parse_messages
from tests.fake_upstream import asgi_client, free_port

TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}}]


def dialogue(result: str) -> list[dict]:
    return [{"role": "user", "content": "Where is order W999?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": '{"order_id": "W999"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": result}]


@pytest.mark.parametrize("result, kind", [
    ('{"error": "Order #W999 not found"}', "not_found"),
    ('{"status": 404, "message": "no record"}', "not_found"),
    ("Error: no such reservation ABC123", "not_found"),
    ('{"status": 503, "message": "inventory service unavailable"}', "unavailable"),
    ("Error: database timeout", "unavailable"),
    ('{"error": {"code": 429, "message": "slow down"}}', "unavailable"),
    ('{"error": "invalid payment method: gift_card_1"}', "rejected"),
    ('{"status": 422, "detail": "bad"}', "rejected"),
    ("Error: unknown error while saving", "internal"),
    ('{"status": 500, "message": "NullPointerException at OrderService"}', "internal"),
])
def test_the_kind_of_a_failure_comes_from_the_failed_result(result, kind):
    assert failure_kind(result) == kind


def test_only_a_failure_of_the_current_turn_is_what_a_report_is_about():
    old = parse_messages([*dialogue('{"error": "Order #W999 not found"}'), {"role": "user", "content": "ok, and W1?"}])
    assert last_failure(old) is None
    name, result = last_failure(parse_messages(dialogue('{"error": "database timeout"}')))
    assert name == "get_order" and "timeout" in result


def _engine(webhook: str | None = None) -> Engine:
    agent = ScriptedModel([tool_call("report_internal_error", {"summary": "the order lookup failed"})] * 4)
    return Engine(agent, "structural", incidents=Incidents(webhook))


async def _ask(engine: Engine, result: str, stream: bool = False):
    app = create_app(Settings(policy="structural"), engine)
    async with asgi_client(app) as c:
        body = {"model": "m", "messages": dialogue(result), "tools": TOOLS, "stream": stream}
        r = await c.post("/v1/chat/completions", json=body)
        metrics = (await c.get("/metrics")).text
    return r, metrics


def _incidents(metrics: str, kind: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("rein_incidents_total{") and f'rein_incident="report_internal_error/{kind}"' in line)


async def test_a_not_found_is_reported_and_not_blamed_on_our_side(caplog):
    engine = _engine()
    with caplog.at_level(logging.WARNING, logger="rein.incidents"):
        r, metrics = await _ask(engine, '{"error": "Order #W999 not found"}')
    assert r.status_code == 200
    reply = r.json()["choices"][0]["message"]["content"]
    assert "could not find that (the order lookup failed)" in reply
    assert "our side" not in reply and "reported" not in reply  # nothing untrue: it is not our fault
    assert r.headers["x-rein-incident"] == "report_internal_error/not_found"
    assert _incidents(metrics, "not_found") >= 1
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "rein.incidents"]
    assert lines and "report_internal_error/not_found" in lines[0] and "Order #W999 not found" in lines[0]
    assert all(rec.levelno == logging.WARNING for rec in caplog.records if rec.name == "rein.incidents")


async def test_an_outage_says_it_was_reported_because_it_was(caplog):
    with caplog.at_level(logging.WARNING, logger="rein.incidents"):
        r, metrics = await _ask(_engine(), '{"status": 503, "message": "order service unavailable"}')
    reply = r.json()["choices"][0]["message"]["content"]
    assert "not responding right now" in reply and "I've reported it to our team" in reply
    assert r.headers["x-rein-incident"] == "report_internal_error/unavailable"
    assert any("report_internal_error/unavailable" in rec.getMessage() for rec in caplog.records)
    r, _ = await _ask(_engine(), "Error: unknown error while saving")
    assert "went wrong on our side" in r.json()["choices"][0]["message"]["content"]


async def test_a_streamed_reply_reports_in_its_trailer_and_metrics():
    r, metrics = await _ask(_engine(), '{"error": "invalid payment method: gift_card_1"}', stream=True)
    text = r.text
    assert "did not accept that request" in "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in text.splitlines() if line.startswith("data: {"))
    trailer = next(line for line in text.splitlines() if line.startswith(": rein {"))
    assert json.loads(trailer[len(": rein "):])["x-rein-incident"] == "report_internal_error/rejected"
    assert _incidents(metrics, "rejected") >= 1


async def test_the_webhook_gets_each_incident_off_the_reply_path():
    got: list[dict] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        engine = _engine(webhook=f"http://127.0.0.1:{port}/hook")
        r, _ = await _ask(engine, '{"error": "Order #W999 not found"}')
        assert r.status_code == 200
        await asyncio.wait_for(engine.incidents.drain(), 10)
    finally:
        await runner.cleanup()
    assert len(got) == 1
    assert got[0]["event"] == "rein.incident" and got[0]["kind"] == "not_found" and got[0]["policy"] == "structural"
    assert got[0]["failed_tool"] == "get_order" and "not found" in got[0]["evidence"]


async def test_a_webhook_that_is_down_costs_a_log_line_not_the_reply(caplog):
    engine = _engine(webhook=f"http://127.0.0.1:{free_port()}/hook")  # nobody listens
    with caplog.at_level(logging.WARNING, logger="rein.incidents"):
        r, _ = await _ask(engine, '{"error": "Order #W999 not found"}')
        await asyncio.wait_for(engine.incidents.drain(), 10)
    assert r.status_code == 200 and "could not find" in r.json()["choices"][0]["message"]["content"]
    assert any("incident webhook failed" in rec.getMessage() for rec in caplog.records)


def test_the_webhook_setting_takes_only_an_http_url(monkeypatch):
    monkeypatch.setenv("REIN_INCIDENT_WEBHOOK", "http://127.0.0.1:9/hook")
    assert Settings.from_env().incident_webhook == "http://127.0.0.1:9/hook"
    with pytest.raises(Exception):
        Settings(incident_webhook="file:///etc/passwd")
