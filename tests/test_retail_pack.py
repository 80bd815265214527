"""examples/policies/retail.yaml: a second domain's policy in the same pack language as the airline
one (orders, a user's payment methods, a catalogue whose variants are a map keyed by item id).
Hand-made dialogues: each rule holds the call the policy forbids and lets the allowed one pass."""
from __future__ import annotations

import json
from pathlib import Path

from inception.actions import ActionChecker
from policies.loader import load_policy
from policies.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage

PACK = Path(__file__).resolve().parents[1] / "examples/policies/retail.yaml"
USER = {"name": {"first_name": "Ada", "last_name": "Moss"}, "orders": ["#W100", "#W200"],
        "payment_methods": {"credit_card_11": {"source": "credit_card", "id": "credit_card_11"},
                            "gift_card_22": {"source": "gift_card", "balance": 40, "id": "gift_card_22"}}}
LAMP = {"name": "Desk Lamp", "product_id": "p-lamp", "variants": {
    "i-lamp-white": {"item_id": "i-lamp-white", "options": {"color": "white"}, "available": True, "price": 30.0},
    "i-lamp-red": {"item_id": "i-lamp-red", "options": {"color": "red"}, "available": False, "price": 31.0}}}
MUG = {"name": "Mug", "product_id": "p-mug", "variants": {
    "i-mug-blue": {"item_id": "i-mug-blue", "options": {"color": "blue"}, "available": True, "price": 9.0}}}


def order(oid: str, status: str, amount: float = 120.0) -> dict:
    return {"order_id": oid, "user_id": "ada_1", "status": status,
            "items": [{"name": "Desk Lamp", "product_id": "p-lamp", "item_id": "i-lamp-black", "price": 29.0}],
            "payment_history": [{"transaction_type": "payment", "amount": amount, "payment_method_id": "credit_card_11"}]}


def step(name: str, args: dict, result: dict, cid: str) -> list:
    call = ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})
    return [AssistantMessage(content=None, tool_calls=[call]), ToolMessage(tool_call_id=cid, content=json.dumps(result))]


def held(status: str, name: str, args: dict, amount: float = 120.0) -> list[str]:
    msgs = [UserMessage(content="Hi, I'm Ada, order #W100"),
            *step("get_user_details", {"user_id": "ada_1"}, USER, "a"),
            *step("get_order_details", {"order_id": "#W100"}, order("#W100", status, amount), "b"),
            *step("get_product_details", {"product_id": "p-lamp"}, LAMP, "c"),
            *step("get_product_details", {"product_id": "p-mug"}, MUG, "d"),
            UserMessage(content="yes, go ahead")]
    draft = AssistantMessage(content=None, tool_calls=[ToolCall(id="x", function={"name": name, "arguments": json.dumps(args)})])
    return sorted(d.rule for d in ActionChecker(load_policy(str(PACK)).actions).check(msgs, draft) if d.hold)


def test_only_a_pending_order_is_cancelled_and_for_a_reason_the_policy_names():
    cancel = {"order_id": "#W100", "reason": "no longer needed"}
    assert held("pending", "cancel_pending_order", cancel) == []
    assert held("processed", "cancel_pending_order", cancel) == ["action:cancel_pending_only"]
    assert held("pending", "cancel_pending_order", {**cancel, "reason": "found it cheaper"}) == ["action:cancel_reason"]


def test_an_exchange_takes_an_available_variant_of_the_same_product_from_a_delivered_order():
    swap = {"order_id": "#W100", "item_ids": ["i-lamp-black"], "new_item_ids": ["i-lamp-white"],
            "payment_method_id": "credit_card_11"}
    assert held("delivered", "exchange_delivered_order_items", swap) == []
    assert held("pending", "exchange_delivered_order_items", swap) == ["action:exchange_delivered_only"]
    # a variant found in the catalogue's map, but not available; another product's item
    assert held("delivered", "exchange_delivered_order_items", {**swap, "new_item_ids": ["i-lamp-red"]}) == \
        ["action:new_item_same_product"]
    assert held("delivered", "exchange_delivered_order_items", {**swap, "new_item_ids": ["i-mug-blue"]}) == \
        ["action:new_item_same_product"]
    assert held("delivered", "exchange_delivered_order_items", {**swap, "item_ids": ["i-none"]}) == \
        ["action:builtin/unknown_id", "action:items_in_order", "action:new_item_same_product"]


def test_payment_comes_from_the_users_profile_and_a_gift_card_must_cover_the_order():
    assert held("pending", "modify_pending_order_payment", {"order_id": "#W100", "payment_method_id": "gift_card_22"},
                amount=35.0) == []
    assert held("pending", "modify_pending_order_payment", {"order_id": "#W100", "payment_method_id": "gift_card_22"}) == \
        ["action:gift_card_covers"]
    assert held("pending", "modify_pending_order_payment", {"order_id": "#W100", "payment_method_id": "credit_card_11"}) == \
        ["action:new_payment_differs"]
    # a refund goes back to the card paid with, or to a gift card
    back = {"order_id": "#W100", "item_ids": ["i-lamp-black"], "payment_method_id": "credit_card_11"}
    assert held("delivered", "return_delivered_order_items", back) == []
    assert held("delivered", "return_delivered_order_items", {**back, "payment_method_id": "gift_card_22"}) == []
