"""The shop pack and hand-made dialogues the action-rule tests share (tests/test_actions_rules.py,
tests/test_actions_rule_inputs.py)."""
from __future__ import annotations

import json

from inception.actions import ActionChecker
from policies.loader import parse_policy
from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

PACK = """
name: shop
actions:
  now: [{header: x-now}, {system_prompt: 'Today is (\\d{4}-\\d\\d-\\d\\d)'}]
  builtins: {unconfirmed_write: off, unknown_id: off, repeated_failed_write: off}
  records:
    order:
      from: [{tool: get_order, key: args.order_id}]
      fields:
        customer_id: string
        status: {type: enum, values: [pending, shipped]}
        placed_at: datetime
        total: money
        items: {type: list, items: {sku: string, qty: int}}
    customer:
      from: [{tool: get_customer, key: args.customer_id}]
      fields: {tier: {type: enum, values: [basic, plus]}}
    product:
      from: [{tool: search_products, items: "[]", key: sku}]
      fields: {sku: string, in_stock: bool}
  tables:
    refund_limit: {basic: 50.0, plus: 500.0}
  tools:
    cancel_order: {bind: {order: args.order_id}}
    refund_order:
      bind: {order: args.order_id, customer: order.customer_id}
      arguments: {order_id: string, amount: money}
    update_items:
      bind: {order: args.order_id, products: {record: product, key: "args.items[].sku"}}
  rules:
    - id: not_shipped
      tool: cancel_order
      condition: order.status == "pending"
      reason: A shipped order cannot be cancelled.
    - id: cancel_window
      tool: cancel_order
      condition: now - order.placed_at <= duration("720h")
      reason: An order can be cancelled within 30 days.
      on_violation: flag
    - id: refund_limit
      tool: refund_order
      condition: args.amount <= tables.refund_limit[customer.tier] && args.amount <= order.total
      reason: A refund is at most the order's total and the customer's tier limit.
    - id: in_stock
      tool: update_*
      when: size(args.items) > 0
      condition: products.all(p, p.in_stock)
      reason: Only products in stock can be added.
"""


def _call(name: str, args: dict, cid: str = "c1") -> ToolCall:
    return ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})


def _fetched(tool: str, args: dict, result) -> list:
    cid = f"f_{tool}_{len(json.dumps(args))}"
    return [AssistantMessage(content=None, tool_calls=[_call(tool, args, cid)]),
            ToolMessage(tool_call_id=cid, content=json.dumps(result))]


ORDER = {"order_id": "O1", "customer_id": "cu1", "status": "shipped", "placed_at": "2025-03-01T10:00:00",
         "total": "$80.00", "items": [{"sku": "S1", "qty": 1}]}


def dialogue(*fetched, said: str = "yes please", system: str = "Today is 2025-03-10.") -> list:
    out = [SystemMessage(content=system), UserMessage(content="hi, order O1")]
    for f in fetched:
        out += _fetched(*f)
    return out + [UserMessage(content=said)]


def check(messages, name, args, pack=PACK, now=None):
    checker = ActionChecker(parse_policy(pack).actions)
    return checker, checker.check(messages, AssistantMessage(content=None, tool_calls=[_call(name, args)]),
                                  now_header=now)
