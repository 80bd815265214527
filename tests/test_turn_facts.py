"""One turn's facts are built once (issue 21): the gate, the plan and the refine loop of a pipeline
turn read one evidence, held in the turn's own ``TurnFacts`` (``TurnContext.facts``), not in a
module-global keyed by the identity of a message list."""
from __future__ import annotations

import json

import pytest

from middleware.engine import Engine
from middleware.models import ScriptedModel
from policies.chat_model import ModelRequest
from policies.messages import ToolMessage, UserMessage, parse_messages
from refiners import evidence
from refiners.base import TurnContext
from refiners.turn_facts import TurnFacts

ORDER = {"order_id": "A1234", "status": "shipped", "delivery_date": "2025-03-14"}
DIALOGUE = [
    {"role": "user", "content": "Where is my order A1234?"},
    {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": json.dumps(ORDER)},
]


@pytest.fixture
def builds(monkeypatch):
    """How many times a dialogue's evidence is built."""
    count = {"n": 0}
    real = evidence.Evidence.from_context.__func__

    def counted(cls, ctx):
        count["n"] += 1
        return real(cls, ctx)

    monkeypatch.setattr(evidence.Evidence, "from_context", classmethod(counted))
    return count


@pytest.mark.parametrize("policy", ["structural", "default"])
async def test_a_turn_that_plans_and_refines_builds_its_evidence_once(builds, policy):
    engine = Engine(ScriptedModel(["Your order A1234 was delivered on March 15."]), policy,
                    rein_model=ScriptedModel(['{"refiners": [], "reason": "none"}'], cycle=True))
    state = await engine.pipeline().run(ModelRequest(messages=parse_messages(DIALOGUE)))
    assert state["refinement"].final == "Your order A1234 was shipped on March 14."  # planned and refined
    assert builds["n"] == 1


async def test_a_streamed_turn_builds_its_evidence_once(builds):
    engine = Engine(ScriptedModel(["Your order A1234 was delivered on March 15."]), "structural")
    events = [e async for e in engine.pipeline().events(ModelRequest(messages=parse_messages(DIALOGUE)))]
    assert events and builds["n"] == 1


def test_facts_are_kept_for_the_same_messages_and_rebuilt_for_others(builds):
    facts = TurnFacts()
    messages = parse_messages(DIALOGUE)
    ctx = TurnContext(messages=messages, facts=facts)
    first = facts.evidence(ctx)
    assert facts.evidence(TurnContext(messages=list(messages), facts=facts)) is first  # a copy of the list: kept
    grown = TurnContext(messages=[*messages, ToolMessage(tool_call_id="c2", content='{"order_id": "B7"}')],
                        facts=facts)
    assert facts.evidence(grown) is not first and "B7" in facts.evidence(grown).ids
    assert builds["n"] == 2
    replaced = TurnContext(messages=[UserMessage(content="hi"), *messages[1:]], facts=facts)
    facts.evidence(replaced)  # as many messages as the first, one of them another: rebuilt
    assert builds["n"] == 3


def test_a_context_made_without_facts_has_its_own():
    one, two = TurnContext(messages=[]), TurnContext(messages=[])
    assert one.facts is not two.facts
    assert "facts" not in one.model_dump()  # a cache, not part of what the context says


class SameHash(str):
    """A text whose hash is another text's: the cache of read messages must still tell them apart."""

    def __hash__(self) -> int:
        return 42


def test_messages_read_are_kept_by_their_text_not_by_its_hash():
    from refiners import message_facts

    message_facts.forget()
    one = message_facts.said_facts(SameHash("Your order A1234 ships on May 3."), "user", 0)
    two = message_facts.said_facts(SameHash("Your order B5678 ships on May 9."), "user", 0)  # same length too
    assert one is not two and "A1234" in one.ids and "B5678" in two.ids


def test_messages_read_are_bounded_by_the_characters_they_hold(monkeypatch):
    from refiners import message_facts

    message_facts.forget()
    monkeypatch.setattr(message_facts.READ, "max_chars", 400)
    for i in range(20):
        message_facts.said_facts(f"Order A{1000 + i} ships on May 3. " + "x" * 60, "user", i)
    assert 0 < message_facts.READ.held <= 400 and len(message_facts.READ.items) < 20
    message_facts.forget()
