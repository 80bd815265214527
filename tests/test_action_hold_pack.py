"""The action hold with a real pack (examples/policies/airline.yaml, CEL rules) through the proxy:
an ineligible cancellation is held and the re-asked answer reaches the client; a reply that claims
a cancellation no call made is reported. Official openai and anthropic clients."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fake_upstream import asgi_client, openai_client
from protocol_doubles import anthropic_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, ScriptedModel, tool_call
from middleware.proxy import create_app

PACK = str(Path(__file__).resolve().parents[1] / "examples" / "policies" / "airline.yaml")
RESERVATION = {"reservation_id": "ABC123", "user_id": "mia_1", "origin": "JFK", "destination": "SEA",
               "flight_type": "one_way", "cabin": "economy",
               "flights": [{"flight_number": "HAT001", "date": "2024-05-20", "origin": "JFK", "destination": "SEA",
                            "price": 200}],
               "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-01-01"}],
               "payment_history": [{"payment_id": "credit_card_1", "amount": 200}],
               "created_at": "2024-05-01T10:00:00", "total_baggages": 0, "nonfree_baggages": 0, "insurance": "no"}
DIALOGUE = [
    {"role": "system", "content": "You are an airline agent. The current time is 2024-05-15 15:00:00 EST."},
    {"role": "user", "content": "Please cancel reservation ABC123."},
    {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
        "name": "get_reservation_details", "arguments": '{"reservation_id": "ABC123"}'}}]},
    {"role": "tool", "tool_call_id": "c1", "content": json.dumps(RESERVATION)},
    {"role": "user", "content": "Yes, please cancel it, my plans changed."}]
TOOLS = [{"type": "function", "function": {"name": n, "description": n, "parameters": {
    "type": "object", "properties": {"reservation_id": {"type": "string"}}}}}
    for n in ("get_reservation_details", "cancel_reservation")]
SORRY = "I'm sorry: ABC123 was booked more than 24 hours ago without insurance, so it cannot be cancelled."
RULE = "action:cancel_eligible"


def told(request) -> bool:
    return any("rein held the call" in c.function.arguments
               for m in request.messages if m.role == "assistant" for c in m.tool_calls or [])


def agent() -> FunctionModel:
    return FunctionModel(lambda r: SORRY if told(r) else
                         tool_call("cancel_reservation", {"reservation_id": "ABC123", "reason": "change of plan"}))


def app_for(model):
    return create_app(Settings(policy=PACK), Engine(model, PACK, rein_model=ScriptedModel([])))


@pytest.mark.parametrize("stream", [False, True])
async def test_an_ineligible_cancellation_is_held_and_the_reasked_answer_goes_out(stream):
    model = agent()
    async with openai_client(app_for(model)) as client:
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=DIALOGUE, tools=TOOLS,
                                                                     stream=stream)
        if stream:
            chunks = [c async for c in raw.parse()]
            assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            message = raw.parse().choices[0].message
            assert message.tool_calls is None
            text = message.content
            assert raw.headers["x-rein-held-calls"] == RULE
    assert text == SORRY and len(model.requests) == 2 and told(model.requests[1])


async def test_the_messages_route_drops_a_cancellation_the_agent_insists_on():
    model = ScriptedModel([tool_call("cancel_reservation", {"reservation_id": "ABC123"})], cycle=True)
    anthropic_tools = [{"name": t["function"]["name"], "description": t["function"]["description"],
                        "input_schema": t["function"]["parameters"]} for t in TOOLS]
    messages = [{"role": "user", "content": "Please cancel reservation ABC123."},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_reservation_details",
                                                   "input": {"reservation_id": "ABC123"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                              "content": json.dumps(RESERVATION)},
                                             {"type": "text", "text": "Yes, please cancel it."}]}]
    async with anthropic_client(app_for(model)) as client:
        raw = await client.messages.with_raw_response.create(
            model="m", max_tokens=64, system=DIALOGUE[0]["content"], messages=messages, tools=anthropic_tools)
        final = await raw.parse()
    assert [b.type for b in final.content] == ["text"] and final.stop_reason == "end_turn"
    assert final.content[0].text.startswith("I did not carry out cancel_reservation: A reservation can be cancelled")
    assert raw.headers["x-rein-dropped-calls"] == RULE and len(model.requests) == 3


async def test_a_reply_claiming_a_cancellation_no_call_made_is_reported():
    model = ScriptedModel(["Your reservation ABC123 has been cancelled."])
    async with asgi_client(app_for(model)) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": DIALOGUE, "tools": TOOLS})
    assert r.json()["choices"][0]["message"]["content"] == "Your reservation ABC123 has been cancelled."
    assert r.headers["x-rein-flagged-calls"] == "action:builtin/claimed_action"


async def test_a_claimed_action_in_plan_mode_is_reasked_before_the_reply_goes_out(tmp_path):
    pack = tmp_path / "strict.yaml"
    text = re.sub(r"(?m)^  builtins: .*\n", "", Path(PACK).read_text())  # the pack's own line, if any
    pack.write_text(text.replace("\nactions:\n", "\nactions:\n  builtins: {claimed_action: plan}\n", 1))
    model = ScriptedModel(["Your reservation ABC123 has been cancelled.", SORRY])
    app = create_app(Settings(policy=str(pack)), Engine(model, str(pack), rein_model=ScriptedModel([])))
    async with asgi_client(app) as http:
        r = await http.post("/v1/chat/completions", json={"model": "m", "messages": DIALOGUE, "tools": TOOLS})
    assert r.json()["choices"][0]["message"]["content"] == SORRY and len(model.requests) == 2
    assert r.headers["x-rein-held-calls"] == "action:builtin/claimed_action"


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/messages"])
async def test_the_pack_reads_now_from_its_request_header_first(route):
    """The header's clock wins over the system prompt's: within 24 hours of booking by the header,
    the cancellation goes out; by the system prompt's clock alone, it is held."""
    def body() -> dict:
        if route == "/v1/chat/completions":
            return {"model": "m", "messages": DIALOGUE, "tools": TOOLS}
        return {"model": "m", "max_tokens": 64, "system": DIALOGUE[0]["content"], "messages": [
            DIALOGUE[1], {"role": "assistant", "content": [{"type": "tool_use", "id": "c1", "name": "get_reservation_details",
                                                            "input": {"reservation_id": "ABC123"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c1", "content": json.dumps(RESERVATION)},
                                         {"type": "text", "text": DIALOGUE[4]["content"]}]}],
            "tools": [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in TOOLS]}

    cancel = tool_call("cancel_reservation", {"reservation_id": "ABC123"}, id="c9")
    model = ScriptedModel([cancel, cancel, SORRY])
    async with asgi_client(app_for(model)) as http:
        allowed = await http.post(route, json=body(), headers={"x-rein-now": "2024-05-01 20:00:00"})
        held = await http.post(route, json=body())
    assert "x-rein-held-calls" not in allowed.headers and "cancel_reservation" in allowed.text
    assert held.headers["x-rein-held-calls"] == RULE and "cancel_reservation" not in held.text
