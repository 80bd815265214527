"""Factuality on what real agents write: each rewrite rein once made wrongly, as a small dialogue that
must now be left alone, and the contradictions it must still catch (issue 9)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from policies.messages import parse_messages
from policies.schema import Budgets, RefinerSettings
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.factuality import deterministic_pass
from refiners.refinery import AdaptiveRefinery

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "tau-bench-airline" / "dev.json"
FLIGHTS = [{"flight_number": "HAT069", "origin": "JFK", "destination": "SEA", "scheduled_departure_time_est": "06:00:00",
            "scheduled_arrival_time_est": "12:00:00", "status": "available",
            "available_seats": {"basic_economy": 0, "economy": 12, "business": 3},
            "prices": {"basic_economy": 51, "economy": 121, "business": 239}},
           {"flight_number": "HAT083", "origin": "JFK", "destination": "SEA", "scheduled_departure_time_est": "01:00:00",
            "scheduled_arrival_time_est": "07:00:00", "status": "available",
            "available_seats": {"basic_economy": 16, "economy": 7, "business": 3},
            "prices": {"basic_economy": 87, "economy": 100, "business": 276}}]
PROFILE = {"user_id": "mia_li_3668", "dob": "1990-04-05", "membership": "gold",
           "payment_methods": {"certificate_4856383": {"source": "certificate", "amount": 500, "id": "certificate_4856383"},
                               "gift_card_1": {"source": "gift_card", "amount": 120, "id": "gift_card_1"}},
           "reservations": ["NO6JO3", "M20IZO"]}
RESERVATION = {"reservation_id": "NO6JO3", "user_id": "mia_li_3668", "status": None, "cabin": "economy",
               "flights": [{"flight_number": "HAT026", "date": "2024-05-20", "price": 164, "origin": "JFK"}],
               "passengers": [{"first_name": "Mia", "last_name": "Li", "dob": "1990-04-05"}],
               "payment_history": [{"payment_id": "certificate_4856383", "amount": 329}], "created_at": "2024-05-01T10:00:00"}


def dialogue(*results, user="Can you help me?", args=None) -> list:
    raw = [{"role": "user", "content": user}]
    for i, result in enumerate(results):
        raw += [{"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}", "type": "function", "function": {
                    "name": "lookup", "arguments": json.dumps((args or {}) if i == 0 else {})}}]},
                {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps(result)}]
    return parse_messages(raw)


def check(messages, draft: str) -> tuple[str, list[str]]:
    fixed, found, _ = deterministic_pass(draft, Evidence.from_context(TurnContext(messages=messages)))
    return fixed, found


@pytest.mark.parametrize("draft", [
    # HH:MM:SS in the tool, 12-hour clock in the reply: the same times
    "1. **Flight HAT069**\n   - Departure: 06:00 AM EST\n   - Arrival: 12:00 PM EST\n   - Economy Price: $121",
    "Flight HAT083 departs at 1am and arrives at 7:00 am.",
    # status words that belong to other fields, or to no record
    "Your reservation has been successfully booked.",
    "2. Airline cancelled flight",
    "- **Flight HAT069**\n  - Basic Economy: Sold Out\n  - Economy: $121",
    # counts and spans the tool does not state
    "The booking includes only 1 passenger.",
    "Reservations made within the last 24 hours can be cancelled; refunds take 5 to 7 business days.",
])
def test_real_reply_shapes_about_search_results_are_left_alone(draft):
    assert check(dialogue(FLIGHTS), draft) == (draft, [])


@pytest.mark.parametrize("draft", [
    "Remaining Certificate Balance: $171",                 # 500 - 329: arithmetic on tool values
    "After this booking your certificate balance will be $171.",
    "I can offer a $50 certificate as a gesture of goodwill.",  # a policy amount, about no record
    "Your reservation M20IZO is for May 26th.",             # the user named both
    "The total for two passengers is $242.",                 # 2 x 121
])
def test_values_the_user_gave_or_that_follow_from_the_tools_are_left_alone(draft):
    messages = dialogue(PROFILE, RESERVATION, FLIGHTS, user="I want to change reservation M20IZO for May 26th.")
    assert check(messages, draft) == (draft, [])


def test_a_date_the_agent_searched_for_is_not_corrected_to_the_old_reservation():
    messages = dialogue(RESERVATION, args={"reservation_id": "NO6JO3"})
    search = parse_messages([{"role": "assistant", "content": None, "tool_calls": [{"id": "s", "type": "function",
                              "function": {"name": "search", "arguments": '{"date": "2024-05-23"}'}}]},
                             {"role": "tool", "tool_call_id": "s", "content": json.dumps(FLIGHTS)}])
    draft = "- Change to Flight HAT026 (JFK to SEA) on May 23, 2024."
    assert check(messages + search, draft) == (draft, [])


def test_a_date_of_birth_in_a_flight_list_is_not_a_flight_date():
    draft = "1. **Flight HAT026** on May 20\n- **Passenger:** Mia Li, Date of Birth: 1990-04-05"
    assert check(dialogue(RESERVATION), draft) == (draft, [])
    other = "1. **Flight HAT026** on May 20\n- **Passenger:** Ann Li, Date of Birth: 1991-02-03"
    assert check(dialogue(RESERVATION), other)[0] == other


def test_a_value_bound_to_one_record_and_attribute_is_corrected_in_the_replys_own_style():
    fixed, found = check(dialogue(FLIGHTS), "1. **Flight HAT069**\n   - Departure: 09:00 AM EST\n   - Economy Price: $150")
    assert fixed == "1. **Flight HAT069**\n   - Departure: 06:00 AM EST\n   - Economy Price: $121"
    assert "HAT069 scheduled_departure_time_est = 06:00:00" in found[0]
    # a swapped value: the other flight's departure time, stated for this one
    assert check(dialogue(FLIGHTS), "Flight HAT083 departs at 06:00 AM.")[0] == "Flight HAT083 departs at 01:00 AM."


def test_two_facts_that_could_apply_change_nothing_and_leave_a_note():
    evidence = Evidence.from_context(TurnContext(messages=dialogue(FLIGHTS)))
    draft = "Flights HAT069 and HAT083 cost $311 in business."
    fixed, found, notes = deterministic_pass(draft, evidence)
    assert fixed == draft and found == [] and any("several facts could apply" in n for n in notes)


def test_a_status_is_a_claim_only_when_the_sentence_binds_it_to_a_record_with_a_status():
    order = {"order_id": "W2378156", "status": "pending", "items": [{"item_id": "I1", "status": "shipped"}]}
    messages = dialogue(order)
    assert check(messages, "Order #W2378156 has been delivered.")[0] == "Order #W2378156 is pending."
    # a status some record in view has is never "corrected": it may be the one meant
    assert check(messages, "Order #W2378156 has shipped.")[0] == "Order #W2378156 has shipped."
    for draft in ("Your item has been delivered.", "Delivered items can be returned within 30 days."):
        assert check(messages, draft) == (draft, [])


async def test_flag_mode_reports_the_contradiction_and_leaves_the_reply():
    ctx = TurnContext(messages=dialogue(FLIGHTS))
    draft = "Flight HAT083 departs at 06:00 AM."
    for mode, final in (("flag", draft), ("rewrite", "Flight HAT083 departs at 01:00 AM.")):
        refinery = AdaptiveRefinery(RefinerSettings(enabled=True, llm=False, factuality_mode=mode), Budgets())
        out = await refinery.refine(ctx, draft, await refinery.plan(ctx, draft))
        assert out.final == final
        assert (out.flag_header(), out.header()) == (("factuality", "none") if mode == "flag" else ("none", "factuality"))


def test_evidence_is_linear_and_bounded_on_huge_tool_results_and_user_messages():
    big = [{"order_id": f"#W{1000000 + i}", "status": "pending", "price": i * 1.5, "date": "2024-05-14",
            "note": f"shipped on May {i % 28 + 1} at 10:{i % 60:02d}"} for i in range(2500)]   # ~200 KB
    text = " ".join(f"order #W{2000000 + i} on 2024-05-{i % 28 + 1:02d} for ${i}.50" for i in range(1800))  # ~50 KB
    messages = dialogue(big, user=text)
    started = time.process_time()
    evidence = Evidence.from_context(TurnContext(messages=messages))
    deterministic_pass("Order #W1000007 is pending at $10.50 " * 300, evidence)
    assert time.process_time() - started < 2.0  # ~0.2 s here; quadratic work took minutes
    assert len(json.dumps(big)) > 200_000 and len(text) > 50_000


CORPORA = sorted(DEV.parents[1].glob("*/dev.json")) if DEV.parents[1].is_dir() else []


@pytest.mark.parametrize("path", CORPORA or [None], ids=lambda p: p.parent.name if p else "no-data")
def test_seeded_contradictions_in_real_replies_are_caught_and_restored_exactly(path):
    if path is None or not path.exists():
        pytest.skip(f"no real corpus under {DEV.parents[1]} (the shared real trajectories)")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from seeded_facts import measure

    c = measure(path)["counts"]
    # Never a wrong value for a right one, in any corpus: every fix restores the tool's own value.
    assert c["wrong fix"] == 0
    # Caught at least 70% of the seeded values where a corpus has enough of them to say so. When
    # written: tau-bench airline 709/848 (times 460/513, dates 151/168, amounts 98/167); AgentDojo
    # 6/18 (most of its seedable amounts sit in transfers that share one IBAN, which names no one record).
    if c["seeded"] >= 100:
        assert c["caught"] / c["seeded"] >= 0.7, dict(c)
    if path.parent.name == "tau-bench-airline":
        assert c["seeded"] >= 300 and c["caught time"] / c["seeded time"] >= 0.8
        assert c["caught date"] / c["seeded date"] >= 0.85
