"""Vague references, judged on real dialogues: quiet when an id, an option, a yes or the agent's focus
singles the referent out; alarming when a referent of one kind has several open candidates."""
from __future__ import annotations

from reference_dialogues import agent, call, detect, user
import json
import time
from pathlib import Path

import pytest

from inception.dialogue import Dialogue
from inception.references import VagueReference
from policies.messages import UserMessage, parse_messages

DEV = Path(__file__).resolve().parents[2] / "shared/data/tau-bench-airline/dev.json"


def reservation(rid, *flights):
    return {"reservation_id": rid, "user_id": "mia_li_3668", "origin": "JFK", "destination": "SEA",
            "flights": [{"flight_number": f, "date": "2024-05-20", "price": 120} for f in flights]}


PROFILE = {"user_id": "mia_li_3668", "name": {"first_name": "Mia", "last_name": "Li"},
           "payment_methods": {"credit_card_4421486": {"source": "credit_card", "id": "credit_card_4421486"}},
           "reservations": ["FDZ0T5", "HATHAT", "NO6JO3"]}
# A profile lookup, then two reservations read in full (four flights in view).
AIRLINE = [user("Hi, I'm mia_li_3668."), *call("get_user_details", {"user_id": "mia_li_3668"}, PROFILE, "c1"),
           *call("get_reservation_details", {"reservation_id": "HATHAT"}, reservation("HATHAT", "HAT026", "HAT034"), "c2"),
           *call("get_reservation_details", {"reservation_id": "FDZ0T5"}, reservation("FDZ0T5", "HAT136", "HAT039"), "c3"),
           agent("You have reservations HATHAT (flights HAT026, HAT034) and FDZ0T5 (flights HAT136, HAT039). "
                 "What would you like to do?")]


def test_an_id_in_the_users_turn_names_the_referent():
    assert detect([*AIRLINE, user("Yes, please cancel the reservation FDZ0T5, I can't travel.")]) == []
    assert detect([*AIRLINE, user("Please cancel the reservation HATHAT.")]) == []


def test_two_reservations_in_view_and_nothing_singles_one_out():
    found = detect([*AIRLINE, user("Please cancel the reservation.")])
    assert len(found) == 1 and found[0].subtype == "vague_reference"
    assert "2 reservations: FDZ0T5, HATHAT" in found[0].evidence   # reservations, never their flight numbers


def test_an_option_number_after_numbered_options():
    options = [user("I want to fly JFK to SEA on May 20."),
               *call("search_direct_flight", {"origin": "JFK", "destination": "SEA", "date": "2024-05-20"},
                     [{"flight_number": "HAT069", "origin": "JFK", "destination": "SEA", "prices": {"economy": 121}},
                      {"flight_number": "HAT083", "origin": "JFK", "destination": "SEA", "prices": {"economy": 100}}], "c1"),
               agent("Here are your options:\n1. Flight HAT069, $121\n2. Flight HAT083, $100\nWhich one would you like?")]
    assert detect([*options, user("Let's go with Option 1. Please make that change for me.")]) == []
    assert detect([*options, user("The first one. Book it please.")]) == []
    assert detect([*options, user("Please book that flight.")])  # still open: two flights, no pick


def test_yes_to_a_single_proposal():
    proposal = [*AIRLINE, agent("I can cancel reservation FDZ0T5 for you; the refund goes to your card. "
                                "Shall I proceed?")]
    assert detect([*proposal, user("Yes, please cancel it.")]) == []
    assert detect([*AIRLINE, user("Yes, please.")]) == []


def test_that_as_a_determiner_or_a_statement_is_no_reference():
    for text in ("Can you help with that?", "Please make that change for me.",
                 "I think that the fees should be waived. Could you confirm that, please?",
                 "That's okay. Let's just cancel the entire reservation instead."):
        assert detect([*AIRLINE, user(text)]) == [], text


def test_it_after_a_profile_lookup_with_a_list_of_orders():
    profile = {"user_id": "noah_brown_6181", "email": "noah@example.com",
               "payment_methods": [{"source": "paypal", "id": "paypal_5727330"}],
               "orders": ["#W0239900", "#W8454438", "#W5746036"]}
    dialogue = [user("My user id is noah_brown_6181."),
                *call("get_user_details", {"user_id": "noah_brown_6181"}, profile, "c1"),
                agent("Thanks, Noah. I found your account. How can I help?")]
    found = detect([*dialogue, user("Please cancel it.")])
    assert len(found) == 1
    assert all(o in found[0].evidence for o in ("W0239900", "W8454438", "W5746036"))
    assert detect([*dialogue, user("Please cancel #W8454438.")]) == []


def test_the_legs_of_the_reservation_in_focus_are_one_trip():
    one = [user("Reservation HATHAT please."),
           *call("get_reservation_details", {"reservation_id": "HATHAT"}, reservation("HATHAT", "HAT026", "HAT034"), "c1"),
           agent("Your reservation HATHAT is one-way JFK to SEA via ATL on May 20.")]
    assert detect([*one, user("I would like to change the flight to a later one.")]) == []
    assert detect([*one, user("I just need to cancel it and get a refund.")]) == []


def test_a_50kb_user_message_and_a_200kb_tool_result_cost_a_few_ms():
    noisy = " ".join(f"order #W{1000000 + i} on 2024-05-{i % 28 + 1:02d} for ${i}.99, ref HAT{i % 999:03d};"
                     for i in range(1200))
    assert len(noisy) > 50_000
    big = {"reservations": [reservation(f"R{i:05d}", f"HAT{i % 999:03d}", f"HAT{(i + 1) % 999:03d}") for i in range(950)]}
    assert len(json.dumps(big)) > 200_000
    cases = [[*AIRLINE, user(noisy + " Cancel it.")],
             [user("My reservations?"), *call("get_user_details", {"user_id": "x"}, big, "c1"), agent("Here."),
              user("Cancel the reservation please. " + noisy)]]
    for messages in cases:
        d = Dialogue.of(parse_messages(messages), [])
        VagueReference().detect(d)
        best = float("inf")
        for _ in range(5):  # the cheapest of five runs: a busy machine adds its own pauses to any single one
            start = time.perf_counter()
            VagueReference().detect(d)
            best = min(best, time.perf_counter() - start)
        assert best < 0.02   # a few ms; 20 ms leaves room for a slow CI machine


def test_dev_set_alarms_on_at_most_one_percent_of_user_turns():
    if not DEV.exists():
        pytest.skip(f"the real dev set is not here ({DEV})")
    data = json.loads(DEV.read_text())
    detector, turns, alarms = VagueReference(), 0, []
    for t in data["trajectories"]:
        messages = parse_messages(t["traj"])
        for i, m in enumerate(messages):
            if isinstance(m, UserMessage):
                turns += 1
                found = detector.detect(Dialogue.of(messages[:i + 1], data["tools"]))
                alarms += [f"task {t['task_id']} trial {t['trial']}: {found[0].evidence}"] if found else []
    assert turns > 500
    assert len(alarms) <= turns / 100, "\n".join(alarms)


def test_it_takes_the_kind_of_its_antecedent_in_the_turn():
    turn = "If my reservation can't be changed, could we cancel it?"
    assert detect([*AIRLINE[:-1], agent("Your reservation FDZ0T5 is in basic economy."), user(turn)]) == []
    found = detect([*AIRLINE, user(turn)])   # two reservations (and four flights) in the agent's last message
    assert found and "2 reservations: FDZ0T5, HATHAT" in found[0].evidence


def test_the_legs_of_a_single_proposal_are_not_rivals():
    search = call("search_direct_flight", {"origin": "EWR", "destination": "LAX", "date": "2024-05-20"},
                  [{"flight_number": "HAT041", "origin": "EWR"}, {"flight_number": "HAT012", "origin": "LAX"}], "c1")
    proposal = [user("A round trip EWR to LAX please."), *search,
                agent("Outbound: flight HAT041 on May 20. Return: flight HAT012 on May 25. Total $163. "
                      "Please confirm if you would like to proceed with the booking.")]
    assert detect([*proposal, user("I'll go without insurance, let's book it under mia_kim_4397.")]) == []
    options = [*proposal[:-1], agent("Flight HAT041 leaves at 7 AM, flight HAT012 at noon. Which one would you like?")]
    assert detect([*options, user("Please book it.")])


def test_a_qualifier_that_fits_one_candidate_picks_it():
    two = [user("I'm mia_li_3668."), *call("get_reservation_details", {"reservation_id": "M05KNL"},
                                           {"reservation_id": "M05KNL", "origin": "ATL", "destination": "PHL"}, "c1"),
           *call("get_reservation_details", {"reservation_id": "UHDAHF"},
                 {"reservation_id": "UHDAHF", "origin": "JFK", "destination": "SEA"}, "c2"),
           agent("I see two reservations, M05KNL and UHDAHF.")]
    assert detect([*two, user("I need to change the reservation from ATL to PHL.")]) == []
    assert detect([*two, user("I need to change the reservation.")])


def test_a_user_id_in_the_turn_does_not_name_the_order():
    orders = [user("Orders for U300?"), *call("list_orders", {"user_id": "U300"},
                                              {"user_id": "U300", "orders": [{"order_id": "W1001"}, {"order_id": "W1002"}]}, "c1"),
              agent("You have two orders, W1001 and W1002.")]
    assert detect([*orders, user("I'm U300, please cancel the order.")])
    assert detect([*orders, user("Please cancel that.")])
    assert detect([*orders, user("Please cancel W1002.")]) == []
