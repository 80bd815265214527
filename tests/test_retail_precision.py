"""E-commerce-shaped results (an order with items, their options and its payments, issue 19): what a
correct reply restates is left as written, and a wrong price is never "fixed" to another record's
amount. Each case failed before its fix:
- an item's ``options`` (a dict that is a field of the item) is part of the item, not a record named
  by the id-shaped values it holds ("128GB", "IPX7"): two items sharing "128GB" are not one record;
- a tool's whole result that is one bare value (a calculator's) is the agent's own figure;
- a list item under an order whose items are id-less: their prices count as the order's values of
  that kind, so the order's one payment amount is not "the" amount the line means;
- a gift card in two orders' payments: the one in the order heading the list item is meant.
"""
from __future__ import annotations

from fact_dialogues import corrected

ADDRESS = {"address1": "119 Elm Avenue", "city": "Jacksonville", "country": "USA", "state": "FL", "zip": "32255"}


def order(order_id: str, items: list[dict], payments: list[dict], status: str = "pending") -> dict:
    return {"order_id": order_id, "user_id": "lei_wilson_4541", "address": ADDRESS, "items": items,
            "fulfillments": [], "status": status, "payment_history": payments}


def item(name: str, item_id: str, price: float, **options: str) -> dict:
    return {"name": name, "product_id": str(int(item_id) + 7), "item_id": item_id, "price": price, "options": options}


def check(draft: str, *results: object, calls: tuple[tuple[str, dict], ...] = ()) -> str:
    names = [c[0] for c in calls] or ["get_order_details"] * len(results)
    arguments = [c[1] for c in calls] or [{"order_id": r["order_id"]} for r in results]  # type: ignore[index]
    return corrected(draft, *zip(names, arguments, results), user="Can you look at my orders?")


DEVICES = order("#W3826449", [
    item("Smartphone", "9929635042", 1261.14, color="gold", storage="128GB", **{"screen size": "5.8-inch"}),
    item("Tablet", "3788616824", 951.21, **{"screen size": "10-inch"}, storage="128GB", color="black")],
    [{"transaction_type": "payment", "amount": 2212.35, "payment_method_id": "credit_card_3677959"}])


def test_an_items_options_do_not_name_a_record():
    draft = ("**Order #W3826449** (pending)\n"
             "   - **Smartphone** (Item ID: 9929635042)\n      - Options: gold, 128GB, 5.8-inch\n      - Price: $1,261.14\n"
             "   - **Tablet** (Item ID: 3788616824)\n      - Options: 10-inch, 128GB, black\n      - Price: $951.21")
    assert check(draft, DEVICES) == draft


def test_a_calculators_result_is_the_agents_own_figure():
    wallet = {"user_id": "lei_wilson_4541", "payment_methods": {
        "gift_card_1776915": {"source": "gift_card", "balance": 89.0, "id": "gift_card_1776915"}}}
    draft = "After the refund, your gift card (gift_card_1776915) has a balance of $3,223.36."
    got = check(draft, wallet, "3223.36", calls=(("get_user_details", {"user_id": "lei_wilson_4541"}),
                                                 ("calculate", {"expression": "89 + 3134.36"})))
    assert got == draft


NOTEBOOK = order("#W8595443", [
    item("Notebook", "1199058591", 66.28, size="A4", cover="soft cover"),
    item("Desk Lamp", "5320792178", 135.24, color="black", brightness="high")],
    [{"transaction_type": "payment", "amount": 201.52, "payment_method_id": "credit_card_7453883"}])


def test_a_price_under_an_order_is_not_taken_for_its_payment():
    draft = "**Order #W8595443**:\n- **Current item:** Notebook (A4, soft cover) - $70.28\n- New item: Notebook (A5)"
    assert "$201.52" not in check(draft, NOTEBOOK)


def test_a_card_in_two_orders_is_read_in_the_order_heading_the_line():
    card = "gift_card_5681264"
    this = order("#W7810809", [item("Bluetooth Speaker", "6704763132", 911.32, color="blue")],
                 [{"transaction_type": "payment", "amount": 911.32, "payment_method_id": card}])
    other = order("#W1092119", [item("Sunglasses", "4329558751", 241.96, color="red")],
                  [{"transaction_type": "payment", "amount": 241.96, "payment_method_id": card},
                   {"transaction_type": "refund", "amount": 241.96, "payment_method_id": card}], status="cancelled")
    draft = f"Order #W7810809:\n  - Refund: $948.32 to your gift card ({card})"
    fixed = check(draft, other, this)
    assert "$241.96" not in fixed and fixed in (draft, draft.replace("$948.32", "$911.32"))
