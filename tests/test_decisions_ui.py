"""The decision pages: behind the admin key on the proxy (a browser's basic auth too, past the
client API keys), open on ``rein ui``'s own app; the list's filters and per-rule counts; a
decision's dialogue with its evidence marked and its diff; marking it; 10,000 decisions listed
with filters in under 300 ms of server time."""
from __future__ import annotations

import base64
import re
import time
import uuid

import httpx
import pytest

from middleware.config import Settings
from middleware.decisions import DecisionLog, Filters, open_decision_store
from middleware.decisions.ui import create_ui_app
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from middleware.rule_modes import Hit
from policies.chat_model import ModelRequest
from policies.loader import load_policy
from policies.messages import assistant, parse_messages
from refiners.store import tenant

POLICY = load_policy("default")
MESSAGES = [{"role": "user", "content": "Where is order A1234?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "Error: order lookup service unavailable (503)"}]
EVIDENCE = "get_order returned: Error: order lookup service unavailable (503)"


def seeded(path, content=True):
    store = open_decision_store(str(path))
    log = DecisionLog(store, content=content)
    request = ModelRequest(messages=parse_messages(MESSAGES), model="m")
    with tenant("team-a"):
        log.turn(POLICY, request, [Hit("detect:tool_failure", "shadow", "diagnose", EVIDENCE, "Tell the user.")],
                 assistant("Sorry, it is down."), 0.2)
    with tenant("team-b"):
        log.turn(POLICY, request, [Hit("refine:factuality/amount", "act", "refine", "fixed $24.50 → $42.50",
                                       before="It came to $24.50.", after="It came to $42.50.")],
                 assistant("It came to $42.50."), 0.3)
    log.close()
    return store


def proxy(store, api_keys=()):
    engine = Engine(ScriptedModel(["hi"], cycle=True), "structural",
                    decisions=DecisionLog(store) if store is not None else None)
    app = create_app(Settings(policy="structural", admin_key="op-secret", api_keys=list(api_keys)), engine)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test")


def basic(password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"operator:{password}".encode()).decode()}


async def test_the_proxy_serves_the_pages_behind_the_admin_key(tmp_path):
    store = seeded(tmp_path / "d.db")
    async with proxy(store, api_keys=["team-a:sk-a"]) as c:
        refused = await c.get("/rein/")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
        assert (await c.get("/rein/", headers=basic("wrong"))).status_code == 401
        assert (await c.get("/rein/", headers={"authorization": "Bearer sk-a"})).status_code == 401  # a client key
        ok = await c.get("/rein/", headers=basic("op-secret"))
        assert ok.status_code == 200 and "detect:tool_failure" in ok.text
        assert (await c.get("/rein/", headers={"x-rein-admin-key": "op-secret"})).status_code == 200
    async with proxy(None) as c:
        assert (await c.get("/rein/", headers=basic("op-secret"))).status_code == 404  # no log kept


async def test_the_list_filters_and_counts_per_rule(tmp_path):
    store = seeded(tmp_path / "d.db")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_ui_app(store)), base_url="http://ui") as c:
        page = (await c.get("/rein/")).text
        assert page.count('class="row"') == 2 and "50.0%" in page  # each rule fired in 1 of 2 requests
        by_glob = (await c.get("/rein/", params={"rule": "detect:*"})).text
        assert by_glob.count('class="row"') == 1 and "<code>detect:tool_failure</code>" in by_glob
        assert (await c.get("/rein/", params={"mode": "act"})).text.count('class="row"') == 1
        assert "team-b" in (await c.get("/rein/", params={"tenant": "team-b"})).text.split('id="decisions"')[1]
        assert (await c.get("/rein/", params={"time": "15m"})).text.count('class="row"') == 2
        assert (await c.get("/rein/", params={"verdict": "wrong"})).text.count('class="row"') == 0


async def test_a_decision_shows_the_dialogue_the_marked_evidence_and_the_diff_and_can_be_marked(tmp_path):
    store = seeded(tmp_path / "d.db")
    detect = store.page(Filters(rule="detect:tool_failure"))[0]
    refine = store.page(Filters(rule="refine:factuality/amount"))[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_ui_app(store)), base_url="http://ui") as c:
        page = (await c.get(f"/rein/decisions/{detect['id']}")).text
        assert "<mark>Error: order lookup service unavailable (503)</mark>" in page
        assert 'class="msg tool cited"' in page and "Tell the user." in page and "shadow" in page
        diff = (await c.get(f"/rein/decisions/{refine['id']}")).text
        assert "<del>It came to $24.50.</del>" in diff and "<ins>It came to $42.50.</ins>" in diff
        token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
        forged = await c.post(f"/rein/decisions/{detect['id']}/mark", data={"verdict": "wrong", "token": "0" * 32})
        assert forged.status_code == 403 and store.get(detect["id"])["verdict"] is None
        r = await c.post(f"/rein/decisions/{detect['id']}/mark",
                         data={"verdict": "wrong", "note": "the service was up", "token": token})
        assert r.status_code == 303 and r.headers["location"].endswith("?saved=1")
        saved = store.get(detect["id"])
        assert (saved["verdict"], saved["note"]) == ("wrong", "the service was up")
        assert (await c.get("/rein/", params={"verdict": "wrong"})).text.count('class="row"') == 1
        assert (await c.get("/rein/decisions/nope")).status_code == 404


async def test_without_logged_content_the_page_says_where_the_evidence_was(tmp_path):
    store = seeded(tmp_path / "d.db", content=False)
    detect = store.page(Filters(rule="detect:tool_failure"))[0]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_ui_app(store)), base_url="http://ui") as c:
        page = (await c.get(f"/rein/decisions/{detect['id']}")).text
    # the evidence's own text, not "503" alone: random ids and tokens on the page may contain those digits
    assert "Evidence in message 2" in page and "REIN_LOG_CONTENT=1" in page
    assert "service unavailable" not in page and "(503)" not in page


def seed_many(store, n: int) -> None:
    rules = ["detect:tool_failure", "detect:ambiguous_request/vague_reference", "refine:factuality/amount",
             "detect:action_loop", "action:builtin/unconfirmed_write"]
    now = time.time()
    rows = [{"id": uuid.uuid4().hex[:16], "at": now - i * 30, "tenant": f"team-{i % 7}", "conversation": f"c{i // 5}",
             "turn": 3 + i % 20, "request_id": f"r{i // 2}", "policy": "default", "rule": rules[i % len(rules)],
             "mode": ("act", "flag", "shadow")[i % 3], "stage": "diagnose", "evidence": "x" * 120,
             "evidence_at": "[2]", "plan": "Tell the user.", "diff": None, "rein_ms": 0.3, "next": None,
             "verdict": "wrong" if i % 50 == 0 else None, "note": None, "marked_at": None} for i in range(n)]
    store.add(rows=rows, requests={(time.strftime("%Y-%m-%d"), f"team-{k}", "default"): 4000 for k in range(7)})


@pytest.mark.parametrize("params", [{}, {"rule": "detect:*", "mode": "shadow", "time": "24h"},
                                    {"tenant": "team-3", "verdict": "wrong"}, {"rule": "refine:factuality/amount"}])
async def test_ten_thousand_decisions_list_with_filters_in_under_300_ms(tmp_path, params):
    store = open_decision_store(str(tmp_path / "many.db"))
    seed_many(store, 10_000)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_ui_app(store)), base_url="http://ui") as c:
        await c.get("/rein/")  # templates compiled, the connection open: what a server has after its first page
        times = []
        for _ in range(5):
            r = await c.get("/rein/", params=params)
            assert r.status_code == 200 and 'class="row"' in r.text
            times.append(float(r.headers["server-timing"].split("dur=")[1]))
    assert sorted(times)[2] < 300, times  # the median of five, on a shared machine
