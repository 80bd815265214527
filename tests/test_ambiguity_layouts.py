"""Vague references against layouts and phrasings that raised false ambiguity alarms: ids in the rows of
a table or the items of a list (each row's own text is what a qualifier fits), and "it" followed by where
it is acted on ("update it on my pending order": the order is not "it")."""
from __future__ import annotations

from inception.candidates import ids_in_text
from reference_dialogues import agent, call, detect, user

TABLE = ("| Order | Item | Placed | Total |\n|---|---|---|---|\n"
         "| ORD-4411 | Walnut desk lamp | 03/02/2025 | $64.00 |\n"
         "| ORD-4412 | Linen curtains | 03/05/2025 | $38.50 |\n\nWhich one should I cancel?")
LIST = ("Here are your open orders:\n- ORD-4411: walnut desk lamp, placed March 2, $64.00\n"
        "- ORD-4412: linen curtains, placed March 5, $38.50\nWhich one should I cancel?")


def test_a_rows_text_stops_at_the_neighbouring_rows_line():
    lamp, curtains = ids_in_text(TABLE, {}, {})
    assert "lamp" in lamp.around.lower() and "curtains" not in lamp.around.lower()
    assert "curtains" in curtains.around.lower() and "lamp" not in curtains.around.lower()
    lamp, curtains = ids_in_text(LIST, {}, {})
    assert "curtains" not in lamp.around.lower() and "lamp" not in curtains.around.lower()
    assert "open orders" in lamp.around and "Which one" in curtains.around   # lines without an id are kept


def test_a_qualifier_fitting_one_row_of_a_table_or_list_is_no_ambiguity():
    for shown in (TABLE, LIST):
        start = [user("I want to cancel an order."), agent(shown)]
        assert detect([*start, user("cancel it, the lamp one")]) == []
        assert detect([*start, user("cancel it, the curtains one")]) == []


def test_a_table_of_rivals_without_a_qualifier_still_alarms():
    for shown in (TABLE, LIST):
        found = detect([user("I want to cancel an order."), agent(shown), user("cancel it please")])
        assert len(found) == 1 and "ORD-4411, ORD-4412" in found[0].evidence


PROFILE = {"user_id": "noa_park_2210", "address": {"address1": "12 Elm Street", "city": "Austin", "zip": "78701"},
           "orders": ["#W5510021", "#W5510022"]}
ADDRESS = [user("Please change my address to 4 Oak Lane, Austin 78702."),
           *call("get_user_details", {"user_id": "noa_park_2210"}, PROFILE, "c1"),
           agent("Your default address is now 4 Oak Lane, Austin 78702. Orders already placed keep the old one.")]


def test_it_followed_by_where_it_is_acted_on_is_not_that_thing():
    assert detect([*ADDRESS, user("oh could you also update it on my open order")]) == []
    assert detect([*ADDRESS, user("great, can you change it for the order that hasn't shipped yet too?")]) == []
    assert detect([*ADDRESS, user("please update it in my order as well")]) != []   # "my order" itself is vague


def test_it_as_the_thing_acted_on_still_alarms():
    found = detect([*ADDRESS, user("actually, can you cancel it")])
    assert len(found) == 1 and "W5510021, W5510022" in found[0].evidence
    found = detect([*ADDRESS, user("update it with a new item")])   # no determiner: no place named
    assert len(found) == 1
