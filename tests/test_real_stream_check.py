"""On the real dev set, a reply checked sentence by sentence as it streams comes out exactly as the
whole reply checked at once: every agent reply, and every one with a contradiction seeded into a value
bound to a tool fact (bench/seeded_facts.py), cut into three-word chunks."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from middleware.sentence_release import SentenceRelease
from policies.loader import load_policy
from policies.messages import AssistantMessage, parse_messages, text_of
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.factuality import deterministic_pass
from refiners.refinery import AdaptiveRefinery

ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "tau-bench-airline" / "dev.json"


async def streamed(check, text: str, size: int = 3) -> str:
    out: list[dict] = []
    release = SentenceRelease(check, out.append)
    words = text.split(" ")
    for i in range(0, len(words), size):
        piece = " ".join(words[i:i + size]) + (" " if i + size < len(words) else "")
        await release.add({"id": "up", "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
    await release.add({"id": "up", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    await release.close()
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in out)


@pytest.mark.skipif(not DEV.exists(), reason="the dev set is not checked out next to the repository")
async def test_sentence_by_sentence_equals_the_whole_reply_on_real_and_seeded_replies():
    sys.path.insert(0, str(ROOT / "bench"))
    from seeded_facts import seeds

    policy = load_policy("structural")
    refinery = AdaptiveRefinery(policy.refiners, policy.budgets, None)
    data = json.loads(DEV.read_text())
    cases = changed = 0
    for traj in data["trajectories"]:
        messages = parse_messages(traj["traj"])
        for i, m in enumerate(messages):
            if not isinstance(m, AssistantMessage) or not text_of(m) or m.tool_calls:
                continue
            ctx = TurnContext(messages=messages[:i], tools=data.get("tools"))
            if not refinery.may_refine(ctx):
                continue
            evidence = Evidence.from_context(ctx)
            for text in [text_of(m)] + [s for _, s, _ in seeds(text_of(m), evidence)]:
                whole = deterministic_pass(text, evidence)[0]
                assert await streamed(refinery.sentence_check(ctx), text) == whole, text
                cases += 1
                changed += whole != text
    assert cases > 1000 and changed > 400  # the seeded contradictions were fixed in the stream too
