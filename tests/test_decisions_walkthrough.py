"""The README's walk-through, step by step: start rein in shadow mode, send traffic, open the page,
see which rule fired on which turn and why, mark one wrong, export it, switch that rule to flag in
the pack, reload."""
from __future__ import annotations

import asyncio
import base64
import json
import re

import httpx

from middleware.cli import build_parser, main
from middleware.config import Settings
from middleware.decisions import DecisionLog, Filters
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.proxy import create_app
from tests.decision_traffic import REPLIES, TOOLS, TRAFFIC, VAGUE, openai_client, send_all

ADMIN = {"authorization": "Basic " + base64.b64encode(b"me:op-secret").decode()}
RULE = "detect:ambiguous_request/vague_reference"


async def test_the_readme_walk_through(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REIN_LOG_CONTENT", "1")
    monkeypatch.setenv("REIN_ADMIN_KEY", "op-secret")
    pack = tmp_path / "mypack.yaml"
    pack.write_text("name: mypack\nextends: structural\n")
    db = tmp_path / "rein-decisions.db"

    # 1. rein serve --shadow --decision-db rein-decisions.db --policy mypack.yaml (the engine it builds,
    #    in front of a scripted agent)
    args = build_parser().parse_args(["serve", "--shadow", "--decision-db", str(db), "--policy", str(pack)])
    settings = Settings.from_env(shadow=args.shadow, decision_db=args.decision_db, policy=args.policy)
    assert settings.shadow and settings.admin_key == "op-secret"
    agent = ScriptedModel(REPLIES * 3)
    engine = Engine(agent, settings.policy, decisions=DecisionLog.from_settings(settings), shadow=settings.shadow)
    app = create_app(settings, engine)

    # 2. send traffic: every reply is the agent's own, and the headers say what rein would have done
    responses = await send_all(app)
    replies = [r.parse().choices[0].message.content for r in responses]
    assert replies == REPLIES  # the wrong amount included: nothing changed
    assert len(agent.requests[0].messages) == len(VAGUE)  # no plan planted
    assert responses[0].headers["x-rein-would-plan"] == RULE
    assert responses[2].headers["x-rein-would-refine"] == "refine:factuality/amount"
    engine.decisions.flush()

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test") as c:
        # 3. open the page: the rules that fired, with their share of requests
        page = (await c.get("/rein/", headers=ADMIN)).text
        for _, _, rule in TRAFFIC[:3]:
            assert f"<code>{rule}</code>" in page
        assert "4 requests seen" in page and "25.0%" in page

        # 4. which rule fired on which turn, and why
        (decision,) = engine.decisions.store.page(Filters(rule=RULE))
        shown = (await c.get(f"/rein/decisions/{decision['id']}", headers=ADMIN)).text
        assert "message 4 of the conversation" in shown and "shadow" in shown
        assert "W1001, W1002" in shown and "Plan rein would have planted" in shown

        # 5. mark it wrong, with a note
        token = re.search(r'name="token" value="([0-9a-f]+)"', shown).group(1)
        marked = await c.post(f"/rein/decisions/{decision['id']}/mark", headers=ADMIN,
                              data={"verdict": "wrong", "note": "'it' is the last order named", "token": token})
        assert marked.status_code == 303
        assert "marked wrong" in (await c.get(f"/rein/decisions/{decision['id']}", headers=ADMIN)).text

    # 6. export it: a dialogue `rein diagnose` reads, and it reproduces the finding (the regression)
    out = tmp_path / "regressions"
    assert main(["decisions", "--decision-db", str(db), "export", "--wrong", str(out)]) == 0
    (case,) = out.glob("detect-ambiguous_request-vague_reference-*.json")
    assert json.loads(case.read_text())["rein"]["note"] == "'it' is the last order named"
    capsys.readouterr()
    assert await asyncio.to_thread(main, ["diagnose", "--policy", str(pack), str(case)]) == 0  # its own loop
    assert "vague_reference" in capsys.readouterr().out

    # 7. switch that rule to flag in the pack, and reload (SIGHUP, or --policy-watch)
    pack.write_text(f"name: mypack\nextends: structural\nrules:\n  {RULE}: flag\n")
    assert app.state.reloader.reload()
    client = openai_client(app)
    again = await client.chat.completions.with_raw_response.create(model="m", messages=VAGUE, tools=TOOLS)
    await client.close()
    assert again.headers["x-rein-rules"] == f"{RULE}=flag" and "x-rein-would-plan" not in again.headers
    assert again.headers["x-rein-diagnosis"] == "ambiguous_request/vague_reference"  # reported, nothing planted
    engine.decisions.close()
    assert [d["mode"] for d in engine.decisions.store.page(Filters(rule=RULE))] == ["flag", "shadow"]
