"""A price the words tie to one of an order's id-less items (its name and option values before the
value) is checked against that item's own price: a wrong one is restored; a right one, a line naming
two items, and a line naming the order's total are left as written. Before items were told apart,
every item's price was left alone ("nothing says which item the reply means"), wrong ones too.
"""
from __future__ import annotations

import json

from policies.messages import parse_messages
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.factuality import deterministic_pass

ORDER = {
    "order_id": "#W5512345", "user_id": "mia_lopez_3318", "status": "delivered",
    "items": [
        {"name": "Vacuum Cleaner", "product_id": "1762337868", "item_id": "4725166838", "price": 515.1,
         "options": {"type": "robotic", "bagged": "bagless"}},
        {"name": "Office Chair", "product_id": "4794339885", "item_id": "8426249116", "price": 488.81,
         "options": {"material": "fabric", "color": "black"}},
        {"name": "Desk Lamp", "product_id": "6817146515", "item_id": "9190635437", "price": 153.23,
         "options": {"color": "black", "brightness": "low"}},
    ],
    "payment_history": [{"transaction_type": "payment", "amount": 1157.14, "payment_method_id": "paypal_4476513"}],
}


def check(draft: str, result: dict = ORDER) -> str:
    messages = [
        {"role": "user", "content": "What did I pay for the items of my last order?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c0", "type": "function", "function": {
            "name": "get_order_details", "arguments": json.dumps({"order_id": result["order_id"]})}}]},
        {"role": "tool", "tool_call_id": "c0", "content": json.dumps(result)},
    ]
    fixed, _, _ = deterministic_pass(draft, Evidence.from_context(TurnContext(messages=parse_messages(messages))))
    return fixed


def test_a_wrong_price_of_a_named_item_is_restored_to_that_items_price():
    draft = ("Order #W5512345 has three items:\n"
             "- Vacuum Cleaner (robotic, bagless): $515.10\n"
             "- Office Chair (fabric, black): $498.81\n"
             "- Desk Lamp (black, low): $153.23")
    assert check(draft) == draft.replace("$498.81", "$488.81")


def test_an_items_price_in_prose_is_that_items():
    draft = "In order #W5512345, the Office Chair cost $498.81 and the Desk Lamp $153.23."
    assert check(draft) == draft.replace("$498.81", "$488.81")


def test_a_right_price_of_a_named_item_is_left():
    draft = "Order #W5512345:\n- Office Chair (fabric, black): $488.81\n- Desk Lamp (black, low): $153.23"
    assert check(draft) == draft


def test_a_line_naming_two_items_is_left():
    draft = "Order #W5512345:\n- Office Chair and Desk Lamp (black): $498.81"
    assert check(draft) == draft


def test_a_line_naming_a_total_is_not_read_as_the_items_price():
    # the order's total (its payment): not the chair's price; the checker reads it as it did before
    draft = "Order #W5512345:\n- Office Chair (fabric, black), order total: $1,167.14"
    assert "$488.81" not in check(draft)
    unpaid = {k: v for k, v in ORDER.items() if k != "payment_history"}
    draft = "Order #W5512345:\n- Office Chair (fabric, black), total with shipping: $498.81"
    assert check(draft, unpaid) == draft  # a total worked out from the price, not the price restated


def test_a_line_that_also_writes_the_items_id_is_about_that_item_of_the_heading_order():
    # the item id is a field of the order heading the list, not another record: the line is the
    # order's, and its words name the item
    draft = ("**Order #W5512345** (delivered)\n"
             "   - Vacuum Cleaner (type: robotic, bagged: bagless) - $515.10, Item ID: 4725166838\n"
             "   - Office Chair (material: fabric, color: black) - $498.81, Item ID: 8426249116\n")
    assert check(draft) == draft.replace("$498.81", "$488.81")
    # the user's id is a field of the order too: the same line is still the order's
    assert check(draft.replace("Item ID: 8426249116", "for mia_lopez_3318")) == \
        draft.replace("Item ID: 8426249116", "for mia_lopez_3318").replace("$498.81", "$488.81")
