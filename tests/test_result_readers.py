"""Tool results read the way they are written, so a correct reply is left as it is and a wrong value
is not "restored" to another record's. Each case failed before its fix:
- prose: a sentence of a tool's text that names no id goes on about the record the nearest earlier
  sentence named (a parcel's expected delivery time is the parcel's, not a value of nothing);
- "Key: value" blocks, blank-line separated, whose keys repeat are a list of records, not one
  mapping that keeps the last block's values;
- an amount with thousands separators before a currency word ("1,058.86 USD") is read whole.
"""
from __future__ import annotations

from fact_dialogues import corrected
from refiners.claims import read_claims
from refiners.facts import facts_from_text
from refiners.records import read_records


check = corrected


PARCEL = "1Z999AA10123456784"
TRACKING = (f"Your package {PARCEL} departed the Louisville, KY facility on Mar 12 at 4:15 PM and is out for "
            f"delivery. Expected delivery: Friday, March 14, by 8:00 PM. Weight: 1.2 lbs.")


def test_an_id_less_sentence_of_a_tools_prose_is_about_the_record_before_it():
    call = ("track_package", {"tracking_number": PARCEL}, TRACKING)
    listed = f"1. **Headphones** (UPS {PARCEL}) – departed Louisville on Mar 12, 4:15 PM; arriving **Friday by 8:00 PM**."
    assert check(listed, call) == listed
    draft = f"Your package ({PARCEL}) left Louisville at 4:15 PM and is due Friday by 8:00 PM."
    wrong = draft.replace("8:00 PM", "7:00 PM")
    assert check(wrong, call) in (wrong, draft)  # never the departure's 4:15 PM


def test_the_carried_record_is_a_tools_or_documents_own_not_a_speakers():
    def delivery(source: str) -> tuple[str, ...]:
        return next(f.entities for f in facts_from_text(TRACKING, source, 1) if f.display == "8:00 PM")
    assert delivery("tool") == delivery("document") == (PARCEL,)
    assert delivery("user") == ()
    # a new paragraph may be about something else
    assert next(f.entities for f in facts_from_text(TRACKING.replace(" Expected", "\n\nExpected"), "tool", 1)
                if f.display == "8:00 PM") == ()


ORDERS = ("Order: SO-6112\nCustomer: Dana Kim\nItem: Headphones X200\nQty: 2\nUnit price: $129.99\n"
          "Ship by: 03/17/2025\nStatus: pending\n\n"
          "Order: SO-7390\nCustomer: Luis Ortega\nItem: Speaker Mini\nQty: 3\nUnit price: $59.50\n"
          "Ship by: 03/18/2025\nStatus: pending\n\n"
          "Open orders: 2\nValue: $438.48")


def test_key_value_blocks_with_repeated_keys_are_a_list_of_records():
    records = read_records(ORDERS)
    assert [r.get("Order") for r in records] == ["SO-6112", "SO-7390", None]
    assert records[0]["Status"] == "pending" and records[1]["Qty"] == "3" and records[2]["Open orders"] == "2"
    # blocks whose keys do not repeat are one record, as before
    assert read_records("Name: Dana Kim\nCity: Austin\n\nPhone: 555-0100\nPlan: basic") == {
        "Name": "Dana Kim", "City": "Austin", "Phone": "555-0100", "Plan": "basic"}
    # the second order marked shipped that day: the first one's ship-by date is not that day
    marked = ("mark_shipped", {"order_id": "SO-7390"}, "OK SO-7390 status: pending -> shipped (2025-03-13 09:31)")
    draft = "SO-7390 is now shipped (it was pending). SO-6112 is still pending and ships by March 17."
    assert check(draft, ("list_open_orders", {}, ORDERS), marked) == draft


def test_an_amount_with_thousands_separators_before_a_currency_word_is_read_whole():
    money = [c for c in read_claims("A refund of 1,058.86 USD and 12 EUR.") if c.kind == "money"]
    assert [(c.text, str(c.value)) for c in money] == [("1,058.86 USD", "1058.86"), ("12 EUR", "12")]
    payments = {"order_id": "#W5931168", "status": "delivered", "payment_history": [
        {"transaction_type": "payment", "amount": 1058.86, "payment_method_id": "credit_card_3631888"}]}
    call = ("get_order_details", {"order_id": "#W5931168"}, payments)
    draft = "Order #W5931168 was paid with credit_card_3631888: 1,058.86 USD."
    assert check(draft, call) == draft
