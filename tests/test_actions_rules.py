"""Action rules of a pack (CEL over the call, the records the dialogue fetched, tables and time):
hand-made dialogues for each kind of rule, and a pack's mistakes reported with their YAML line."""
from __future__ import annotations

from pathlib import Path

import pytest

from inception import build
from inception.actions import ActionChecker
from policies.loader import PolicyError, parse_policy
from policies.messages import AssistantMessage, UserMessage
from tests.rule_dialogues import ORDER, PACK, _call, check, dialogue


def test_a_record_field_rule_holds_the_call_and_the_plan_names_rule_and_evidence():
    checker, found = check(dialogue(("get_order", {"order_id": "O1"}, ORDER)), "cancel_order", {"order_id": "O1"})
    held = [d for d in found if d.hold]
    assert [d.rule for d in held] == ["action:not_shipped"]
    assert held[0].call_id == "c1" and "order.status='shipped'" in held[0].evidence
    plan = checker.plan(found)
    assert "action:not_shipped" in plan and "A shipped order cannot be cancelled." in plan


def test_a_call_the_rules_allow_passes():
    pending = {**ORDER, "status": "pending"}
    _, found = check(dialogue(("get_order", {"order_id": "O1"}, pending)), "cancel_order", {"order_id": "O1"})
    assert found == []


def test_a_record_the_dialogue_never_fetched_is_not_judged():
    _, found = check(dialogue(), "cancel_order", {"order_id": "O1"})
    assert found == []


def test_a_failed_lookup_gives_no_record():
    msgs = dialogue(("get_order", {"order_id": "O1"}, {"error": "not found"}))
    assert check(msgs, "cancel_order", {"order_id": "O1"})[1] == []


def test_flag_mode_reports_without_holding_and_time_comes_from_the_system_prompt_or_a_header():
    pending = {**ORDER, "status": "pending", "placed_at": "2025-01-01T00:00:00"}
    msgs = dialogue(("get_order", {"order_id": "O1"}, pending))
    _, found = check(msgs, "cancel_order", {"order_id": "O1"})
    assert [(d.rule, d.hold) for d in found] == [("action:cancel_window", False)]
    # the header comes first: a "now" inside the window clears it
    assert check(msgs, "cancel_order", {"order_id": "O1"}, now="2025-01-05T00:00:00Z")[1] == []
    # no time anywhere: a rule that reads it is not judged
    assert check(dialogue(("get_order", {"order_id": "O1"}, pending), system="hello"),
                 "cancel_order", {"order_id": "O1"})[1] == []


def test_a_table_lookup_by_a_chained_record_and_money_typed_from_text():
    msgs = dialogue(("get_order", {"order_id": "O1"}, ORDER), ("get_customer", {"customer_id": "cu1"}, {"tier": "basic"}))
    _, found = check(msgs, "refund_order", {"order_id": "O1", "amount": 60})
    assert [d.rule for d in found] == ["action:refund_limit"]
    assert check(msgs, "refund_order", {"order_id": "O1", "amount": 40})[1] == []
    plus = dialogue(("get_order", {"order_id": "O1"}, ORDER), ("get_customer", {"customer_id": "cu1"}, {"tier": "plus"}))
    assert [d.rule for d in check(plus, "refund_order", {"order_id": "O1", "amount": 90})[1]] == ["action:refund_limit"]
    assert check(plus, "refund_order", {"order_id": "O1", "amount": 80})[1] == []  # "$80.00" read as 80.0


def test_a_list_bind_and_a_glob_tool_and_when():
    stock = [{"sku": "S1", "in_stock": True}, {"sku": "S2", "in_stock": False}]
    msgs = dialogue(("get_order", {"order_id": "O1"}, ORDER), ("search_products", {"q": "s"}, stock))
    assert [d.rule for d in check(msgs, "update_items", {"order_id": "O1", "items": [{"sku": "S2"}]})[1]] == \
        ["action:in_stock"]
    assert check(msgs, "update_items", {"order_id": "O1", "items": [{"sku": "S1"}]})[1] == []
    assert check(msgs, "update_items", {"order_id": "O1", "items": []})[1] == []          # when is false
    assert check(msgs, "update_items", {"order_id": "O1", "items": [{"sku": "S9"}]})[1] == []  # never seen


def test_the_cascade_returns_held_findings_with_a_plan_and_says_which_tools_it_covers():
    cascade = build(parse_policy(PACK))
    tools = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
             for n in ("get_order", "cancel_order")]
    msgs = dialogue(("get_order", {"order_id": "O1"}, ORDER))
    d = cascade.check_draft(msgs, tools, AssistantMessage(content=None, tool_calls=[_call("cancel_order", {"order_id": "O1"})]))
    assert [(e.rule, e.hold, e.call_id) for e in d.errors] == [("action:not_shipped", True, "c1")]
    assert "action:not_shipped" in d.plan
    assert cascade.checks_calls(tools)
    assert not cascade.checks_calls([{"type": "function", "function": {"name": "get_order"}}])


# ---- the pack's mistakes, each with its line ---------------------------------------------
def _error(pack: str) -> str:
    with pytest.raises(PolicyError) as e:
        parse_policy(pack, "shop.yaml")
    return str(e.value)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("bad, good, says", [
    ("condition: order.status == \"pending\"", "condition: order.stauts == \"pending\"", "did you mean 'status'"),
    ("condition: order.status == \"pending\"", "condition: ordr.status == \"pending\"", "unknown name 'ordr'"),
    ("condition: order.status == \"pending\"", "condition: order.status == \"pendng\"", "status is never 'pendng'"),
    ("condition: order.status == \"pending\"", "condition: order.status == (", "not a CEL expression"),
    ("tool: cancel_order\n", "tool: cancel_ordr\n", "names tool 'cancel_ordr'"),
    ("args.amount <= tables.refund_limit[", "args.amount <= tables.refund_limits[", "no table 'refund_limits'"),
])
def test_a_rule_naming_what_does_not_exist_is_a_load_error_with_its_line(bad, good, says):
    pack = PACK.replace(bad, good, 1)
    assert pack != PACK
    message = _error(pack)
    assert says in message
    assert f"(line {_line_of(pack, good.splitlines()[0].strip())})" in message


def test_a_bind_to_an_unknown_record_or_argument_is_a_load_error():
    message = _error(PACK.replace("customer: order.customer_id", "customer: order.customer"))
    assert "record 'order' has no field 'customer'" in message and "line " in message
    message = _error(PACK.replace("{order: args.order_id, customer", "{order: args.order, customer"))
    assert "refund_order has no argument 'order'" in message


def test_the_readme_example_pack_loads_and_holds_what_it_says():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Action rules", 1)[1]
    pack = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    msgs = dialogue(("get_order", {"order_id": "O1"}, ORDER))
    msgs[-1] = UserMessage(content="Yes, cancel it")
    _, found = check(msgs, "cancel_order", {"order_id": "O1"}, pack=pack)
    assert [(d.rule, d.hold) for d in found] == [("action:not_shipped", True)]


def test_now_from_a_tool_result_or_a_fixed_value_and_a_write_that_sets_fields_from_its_arguments():
    pack = PACK.replace("now: [{header: x-now}, {system_prompt: 'Today is (\\d{4}-\\d\\d-\\d\\d)'}]",
                        "now: [{tool: get_time, field: now}, {value: '2025-01-02T00:00:00'}]")
    pending = {**ORDER, "status": "pending", "placed_at": "2025-01-01T00:00:00"}
    msgs = dialogue(("get_order", {"order_id": "O1"}, pending), system="no date here")
    assert check(msgs, "cancel_order", {"order_id": "O1"}, pack=pack)[1] == []        # the fixed value
    late = dialogue(("get_order", {"order_id": "O1"}, pending), ("get_time", {}, {"now": "2025-06-01 09:00"}))
    assert [d.rule for d in check(late, "cancel_order", {"order_id": "O1"}, pack=pack)[1]] == ["action:cancel_window"]
    # a write whose result still shows the old status: `arguments` takes the new one from the call
    pack = PACK.replace("      from: [{tool: get_order, key: args.order_id}]",
                        "      from: [{tool: get_order, key: args.order_id},\n"
                        "             {tool: set_status, key: args.order_id, arguments: [status]}]")
    shipped = dialogue(("get_order", {"order_id": "O1"}, ORDER),
                       ("set_status", {"order_id": "O1", "status": "pending"}, ORDER))
    assert check(shipped, "cancel_order", {"order_id": "O1"}, pack=pack)[1] == []


def test_a_now_source_names_exactly_one_place():
    message = _error(PACK.replace("{header: x-now}", "{header: x-now, value: '2025-01-01'}"))
    assert "give exactly one of header" in message and "line 4" in message


def test_the_cascade_checks_a_text_reply_for_a_claimed_action():
    cascade = build(parse_policy(PACK))
    d = cascade.check_reply(dialogue(("get_order", {"order_id": "O1"}, ORDER)),
                            AssistantMessage(content="Your order has been cancelled."))
    assert [(e.rule, e.hold) for e in d.errors] == [("action:builtin/claimed_action", False)]
    assert cascade.check_reply([UserMessage(content="hi")], AssistantMessage(content="Hello!")).errors == []


def test_values_kept_converted_between_checks_never_stand_in_for_another_dialogues():
    """The checker keeps converted values from one draft to the next (inception/actions/cel_context):
    a draft whose dialogue fetched no record, or has no "now", must not be judged with the values
    an earlier dialogue left there."""
    checker = ActionChecker(parse_policy(PACK).actions)

    def rules(messages, now=None):
        draft = AssistantMessage(content=None, tool_calls=[_call("cancel_order", {"order_id": "O1"})])
        return sorted(d.rule for d in checker.check(messages, draft, now_header=now))

    late = dialogue(("get_order", {"order_id": "O1"}, ORDER), system="Today is 2025-06-10.")
    assert rules(late) == ["action:cancel_window", "action:not_shipped"]
    pending = {**ORDER, "status": "pending"}
    assert rules(dialogue(("get_order", {"order_id": "O1"}, pending), system="Today is 2025-03-02.")) == []
    assert rules(dialogue(system="Today is 2025-06-10.")) == []           # no record: nothing to judge
    assert rules(dialogue(("get_order", {"order_id": "O1"}, pending), system="no date here")) == []  # no now
    assert rules(late) == ["action:cancel_window", "action:not_shipped"]
    assert rules(dialogue(("get_order", {"order_id": "O1"}, ORDER), system="no date here")) == ["action:not_shipped"]


CARDS_PACK = """
name: cards
actions:
  builtins: {unconfirmed_write: off, unknown_id: off, repeated_failed_write: off, untrusted_argument: off}
  records:
    customer:
      from: [{tool: get_customer, key: args.customer_id}]
      fields: {cards: map}
  tools:
    pay: {bind: {customer: args.customer_id}}
  rules:
    - id: credit_only
      tool: pay
      condition: customer.cards[args.card_id].kind == "credit"
      reason: Pay with a credit card.
"""


def test_a_map_read_at_an_arguments_key_is_judged_on_that_entry():
    from policies.cel_names import ALL

    rule = parse_policy(CARDS_PACK).actions.rules[0]
    assert rule.reads("condition")["customer"] == {"cards": {"[args.card_id]": {"kind": ALL}}}
    cards = {"customer_id": "cu1", "cards": {"c1": {"kind": "debit"}, "c2": {"kind": "credit"}, "c3": {"kind": "gift"}}}
    msgs = dialogue(("get_customer", {"customer_id": "cu1"}, cards))
    checker = ActionChecker(parse_policy(CARDS_PACK).actions)

    def rules(card):
        draft = AssistantMessage(content=None, tool_calls=[_call("pay", {"customer_id": "cu1", "card_id": card})])
        return [(d.rule, d.evidence) for d in checker.check(msgs, draft)]

    debit = rules("c1")
    assert [r for r, _ in debit] == ["action:credit_only"] and "'c1': {'kind': 'debit'}" in debit[0][1]
    assert "c2" not in debit[0][1]  # only the entry the call names is read (and shown)
    assert rules("c2") == [] and rules("nope") == []  # a card the customer lacks: not judged
    assert [r for r, _ in rules("c3")] == ["action:credit_only"]


def test_a_map_read_for_its_size_keeps_its_keys():
    """``size(customer.cards) > 0`` reads the map for its size only: the check converts its keys,
    not its values, and never an empty map for a customer who has cards."""
    pack = CARDS_PACK.replace('condition: customer.cards[args.card_id].kind == "credit"',
                              "condition: size(customer.cards) > 0").replace("id: credit_only", "id: has_a_card")
    checker = ActionChecker(parse_policy(pack).actions)

    def rules(cards):
        msgs = dialogue(("get_customer", {"customer_id": "cu1"}, {"customer_id": "cu1", "cards": cards}))
        draft = AssistantMessage(content=None, tool_calls=[_call("pay", {"customer_id": "cu1", "card_id": "c1"})])
        return [d.rule for d in checker.check(msgs, draft)]

    assert rules({"c1": {"kind": "debit"}}) == []
    assert rules({}) == ["action:has_a_card"]


@pytest.mark.parametrize("condition", [
    'size(customer.cards) >= 2 && customer.cards[args.card_id].kind == "credit"',
    'customer.cards[args.card_id].kind == "credit" && size(customer.cards) >= 2',  # either order
    'size(customer.cards) >= 2 && customer.cards.c1.kind == "credit"'])            # a named entry too
def test_a_map_read_for_its_size_and_at_one_entry_keeps_every_entry(condition):
    """Read for its size and at the entry an argument names, a map is cut to every entry's key and
    the named entry's fields, not to that entry alone: a customer with two cards has two."""
    pack = CARDS_PACK.replace('condition: customer.cards[args.card_id].kind == "credit"', f"condition: {condition}")
    checker = ActionChecker(parse_policy(pack).actions)

    def rules(cards):
        msgs = dialogue(("get_customer", {"customer_id": "cu1"}, {"customer_id": "cu1", "cards": cards}))
        draft = AssistantMessage(content=None, tool_calls=[_call("pay", {"customer_id": "cu1", "card_id": "c1"})])
        return [d.rule for d in checker.check(msgs, draft)]

    assert rules({"c1": {"kind": "credit"}, "c2": {"kind": "debit"}}) == []
    assert rules({"c1": {"kind": "credit"}}) == ["action:credit_only"]  # one card: fewer than two
    assert rules({"c1": {"kind": "debit"}, "c2": {"kind": "credit"}}) == ["action:credit_only"]
