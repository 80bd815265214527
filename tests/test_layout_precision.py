"""How a value of a reply is tied to its record and attribute, on layouts real agents write (issue
19; found on synthetic corpora of other domains built from tau-bench retail and tau2 telecom data):
a correct value is left as written, and a wrong one is never "fixed" to another attribute's or
another record's value. Each case failed before its fix:
- a Markdown table row: the value's own cell and its column's header name it, not the row's other cells;
- the words after a value, up to a clause mark before the next value, name it (not the next one's);
- "not shipped" contradicts "shipped" only;
- an id that is a field of two records (a phone number) does not pick "the record's one value";
- a sentence naming one of the record's id-less items: a key word far from the value is no proof,
  and the items' values count in the "one value" fallback;
- a sentence naming an id the dialogue knows, but no result describes, is not about the heading's record.
"""
from __future__ import annotations

from fact_dialogues import corrected


def check(draft: str, *results: tuple[str, dict, object], user: str = "Can you check my account?") -> str:
    return corrected(draft, *results, user=user)


PLAN = ("get_plan_details", {"plan_id": "P1001"},
        {"plan_id": "P1001", "name": "Basic Plan", "data_limit_gb": 5.0, "price_per_month": 40.0,
         "data_refueling_price_per_gb": 5.0})


def test_a_table_cell_is_named_by_its_column_not_by_the_rows_other_cells():
    table = "| Plan | Data | Price/month | Refuel price |\n|---|---|---|---|\n| Basic Plan (P1001) | 5 GB | {} | $5.00/GB |"
    assert check(table.format("$40.00"), PLAN) == table.format("$40.00")
    assert "| $5.00 |" not in check(table.format("$77.00"), PLAN)  # never the refuel price of the next cell


BILL = ("get_bill", {"bill_id": "B1005"},
        {"bill_id": "B1005", "period_start": "2025-02-01", "period_end": "2025-03-09", "issue_date": "2025-03-10",
         "due_date": "2025-02-26", "total_due": 65.0, "status": "paid"})


def test_words_after_a_value_name_it_only_up_to_the_next_clause():
    draft = "Bill B1005 covers February 1 to March 3, 2025, due February 26, 2025."
    assert "March 9" in check(draft, BILL) or check(draft, BILL) == draft
    assert "to February 26" not in check(draft, BILL)  # "due" names the next date, not this one


ORDER = ("get_order_details", {"order_id": "#W2239230"},
         {"order_id": "#W2239230", "user_id": "amy_lee_1", "status": "pending",
          "items": [{"name": "Water Bottle", "item_id": "5565631513", "price": 18.5, "options": {"color": "blue"}}],
          "payment_history": [{"transaction_type": "payment", "amount": 18.5, "payment_method_id": "paypal_1"}]})


def test_not_shipped_is_no_contradiction_of_pending():
    draft = "Order #W2239230 is not shipped yet (pending)."
    assert check(draft, ORDER) == draft


def test_an_id_that_two_records_hold_does_not_pick_one_value():
    customer = ("get_customer", {"customer_id": "C1001"},
                {"customer_id": "C1001", "phone_number": "555-123-2002", "goodwill_credit_used_this_year": 25.0})
    line = ("get_line", {"line_id": "L1002"},
            {"line_id": "L1002", "phone_number": "555-123-2002", "status": "active", "plan_id": "P1002"})
    draft = "- 555-123-2002 is active, on the Premium Plan ($65/month)."
    assert check(draft, customer, line) == draft


VACUUM = ("get_order_details", {"order_id": "#W2575533"},
          {"order_id": "#W2575533", "user_id": "amy_lee_1", "status": "pending",
           "items": [{"name": "Vacuum Cleaner", "item_id": "7407609582", "price": 602.48,
                      "options": {"type": "robotic", "bagless": "bagless"}},
                     {"name": "Desk Lamp", "item_id": "5320792178", "price": 135.24, "options": {"color": "black"}}],
           "payment_history": [{"transaction_type": "payment", "amount": 737.72, "payment_method_id": "paypal_1"}],
           "exchange_price_difference": 44.35})


def test_a_sentence_naming_an_item_is_not_read_as_the_orders_amount():
    draft = "Your pending order #W2575533 has the Vacuum Cleaner (robotic, bagless) ($695.89)."
    assert "$737.72" not in check(draft, VACUUM)
    draft = "Exchange requested for order #W2575533: the Vacuum Cleaner goes from robotic, bagless ($695.89) to a corded one."
    assert "$44.35" not in check(draft, VACUUM)


def test_a_known_id_without_a_result_is_not_the_headings_record():
    shipping = ("list_orders", {"customer_id": "C7"}, {"order_id": "SO-6066", "status": "pending", "ship_by": "2025-03-13"})
    draft = "Your orders (SO-6066 listed):\n- SO-6112 is still pending and ships by March 17."
    assert check(draft, shipping, user="Where are SO-6066 and SO-6112?") == draft
