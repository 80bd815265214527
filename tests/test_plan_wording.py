"""A plan rein plants in the agent's reasoning says what is wrong in the dialogue's terms, never how
a detector worked (issue 20, defect 12: "read 83 of 83 chars of earlier context")."""
from __future__ import annotations

import orjson
from decision_traffic import TOOLS, VAGUE
from fake_upstream import asgi_client
from protocol_doubles import app_for

from middleware.models import ScriptedModel


async def test_the_planted_plan_carries_no_detector_internals():
    agent = ScriptedModel(["Which order do you mean, W1001 or W1002?"])
    async with asgi_client(app_for(agent, "structural")) as c:
        r = await c.post("/v1/chat/completions", json={"model": "m", "messages": VAGUE, "tools": TOOLS})
    assert r.status_code == 200 and "vague_reference" in r.headers["x-rein-diagnosis"]
    seen = orjson.dumps([m.model_dump(mode="json") for m in agent.requests[0].messages]).decode()
    assert "W1001, W1002" in seen  # the plan is there, with its evidence
    assert "chars of earlier context" not in seen and "read " not in seen.split("W1001, W1002", 1)[1][:200], seen
