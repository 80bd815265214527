"""The shipped domains: typed tools with JSON schemas, a seeded database, a stable state hash."""
from __future__ import annotations

import json

import pytest

from sim_tests.domains import SHIPPED, db_hash, get_domain
from sim_tests.scenario import Failure


@pytest.mark.parametrize("name", SHIPPED)
def test_tools_have_openai_schemas_and_a_policy(name):
    domain = get_domain(name)
    assert len(domain.policy) > 200
    for schema in domain.tool_schemas():
        fn = schema["function"]
        assert schema["type"] == "function" and fn["description"]
        assert fn["parameters"]["type"] == "object" and fn["parameters"]["additionalProperties"] is False
        assert set(fn["parameters"]["required"]) <= set(fn["parameters"]["properties"])
    assert "transfer_to_human_agents" in domain.tools


def test_hash_is_stable_across_key_order_and_changes_with_state():
    a = {"x": 1, "y": {"b": 2, "a": [1, 2]}}
    b = {"y": {"a": [1, 2], "b": 2}, "x": 1}
    assert db_hash(a) == db_hash(b)
    assert db_hash(a) != db_hash({**a, "x": 2})


@pytest.mark.parametrize("name", SHIPPED)
def test_each_trial_gets_a_fresh_database(name):
    domain = get_domain(name)
    first, second = domain.environment(), domain.environment()
    assert first.hash() == second.hash()
    first.db["transfers"].append("x")
    assert first.hash() != second.hash() and domain.environment().hash() == second.hash()


def test_retail_tools_read_write_and_refuse():
    env = get_domain("retail").environment()
    orders = json.loads(env.execute("list_user_orders", '{"user_id": "u_ava"}'))
    assert {o["order_id"] for o in orders} == {"R1001", "R1002", "R1003"}
    before = env.hash()
    out = json.loads(env.execute("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"}))
    assert out == {"order_id": "R1002", "status": "cancelled", "refund": 39.0}
    assert env.hash() != before and env.db["refunds"] == [{"order_id": "R1002", "amount": 39.0}]
    # a delivered order cannot be cancelled: an error result, the state unchanged
    after = env.hash()
    refused = json.loads(env.execute("cancel_pending_order", {"order_id": "R1001", "reason": "no_longer_needed"}))
    assert "only pending orders" in refused["error"] and env.hash() == after
    assert json.loads(env.execute("find_user_by_email", {"email": "BRAM@example.com"}))["user_id"] == "u_bram"
    assert json.loads(env.execute("return_delivered_order", {"order_id": "R2003"}))["refund"] == 45.0
    moved = json.loads(env.execute("modify_pending_order_address", {"order_id": "R1003", "address": " 7 Birch Lane "}))
    assert moved["address"] == "7 Birch Lane"
    assert env.calls[-1].error is None and env.calls[2].error is not None


def test_bad_arguments_and_unknown_tools_come_back_as_error_results():
    env = get_domain("retail").environment()
    bad_enum = json.loads(env.execute("cancel_pending_order", {"order_id": "R1002", "reason": "cheaper elsewhere"}))
    assert "reason" in bad_enum["error"]
    assert "order_id" in json.loads(env.execute("get_order_details", {}))["error"]
    assert "unknown tool" in json.loads(env.execute("launch_rocket", {}))["error"]
    assert "not valid JSON" in json.loads(env.execute("get_order_details", "{nope"))["error"]
    assert "extra" in json.loads(env.execute("get_order_details", {"order_id": "R1002", "x": 1}))["error"].lower()
    assert env.hash() == get_domain("retail").environment().hash()


def test_travel_tools_keep_seat_counts_and_fares_consistent():
    env = get_domain("travel").environment()
    out = json.loads(env.execute("change_cabin", {"booking_id": "B501", "cabin": "business"}))
    assert out["fare_difference"] == 121
    assert env.db["flights"]["NW100"]["seats"] == {"economy": 13, "business": 1}
    full = json.loads(env.execute("change_booking_flight", {"booking_id": "B502", "flight_id": "NW100"}))
    assert "not on the route" in full["error"]
    moved = json.loads(env.execute("change_booking_flight", {"booking_id": "B502", "flight_id": "NW202"}))
    assert moved["date"] == "2026-12-11"
    assert env.db["flights"]["NW200"]["seats"]["economy"] == 6 and env.db["flights"]["NW202"]["seats"]["economy"] == 8
    assert json.loads(env.execute("cancel_booking", {"booking_id": "B503"}))["refund"] == 199
    assert "B503 is cancelled" in json.loads(env.execute("cancel_booking", {"booking_id": "B503"}))["error"]
    assert [f["flight_id"] for f in json.loads(env.execute("search_flights", {"origin": "osl", "destination": "BGO"}))] \
        == ["NW100", "NW102", "NW104"]


def test_injected_tool_failures_fail_the_given_number_of_times_then_work():
    fault = Failure(type="tool_failure", tool="cancel_booking", times=2)
    env = get_domain("travel").environment([fault])
    for _ in range(2):
        result = json.loads(env.execute("cancel_booking", {"booking_id": "B501"}))
        assert "504" in result["error"] and env.calls[-1].injected
    assert env.db["bookings"]["B501"]["status"] == "confirmed"
    assert json.loads(env.execute("cancel_booking", {"booking_id": "B501"}))["status"] == "cancelled"
    assert not env.calls[-1].injected
