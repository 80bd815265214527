"""What action rules read, in the shapes other domains' tools and prompts give it: records from YAML
and Python-repr results, dates with the month by name, "now" from a tool's YAML field or a bare
date result, and CEL written with chained macros and type names (each found writing a second
domain's pack)."""
from __future__ import annotations

import pytest

from inception.actions import ActionChecker
from policies.loader import parse_policy
from policies.messages import AssistantMessage, ToolMessage, UserMessage
from tests.rule_dialogues import ORDER, PACK, _call, check, dialogue


@pytest.mark.parametrize("condition,ok_qty,bad_qty", [
    # a macro on what another macro gave: its variable is no unknown name, and the list it ranges
    # over is converted whole (no read path names what the second macro reads)
    ("order.items.map(i, i.qty).all(q, q <= 3)", 3, 4),
    ("order.items.filter(i, i.sku == 'S1').all(p, p.qty <= 3)", 2, 5),
    ("type(order.items[0].qty) == int && order.items[0].qty <= 3", 1, 9),
])
def test_chained_macros_and_type_names_load_and_are_judged(condition, ok_qty, bad_qty):
    pack = PACK + f"""    - id: few
      tool: cancel_order
      condition: "{condition}"
      reason: At most three of an item.
"""
    pending = {**ORDER, "status": "pending", "placed_at": "2025-03-09T00:00:00"}
    for qty, held in ((ok_qty, []), (bad_qty, ["action:few"])):
        order = {**pending, "items": [{"sku": "S1", "qty": qty}, {"sku": "S2", "qty": 1}]}
        _, found = check(dialogue(("get_order", {"order_id": "O1"}, order)), "cancel_order", {"order_id": "O1"}, pack)
        assert [d.rule for d in found if d.hold] == held, (condition, qty)


BANK = """
name: bank
actions:
  builtins: {untrusted_argument: off}
  records:
    scheduled:
      from: [{tool: get_scheduled_transactions, items: "[]", key: id}]
      fields: {id: int, recipient: string, amount: number, recurring: bool}
  tools:
    update_scheduled_transaction:
      bind: {tx: {record: scheduled, key: args.id}}
      arguments: {id: int, recipient: string, amount: number}
  rules:
    - id: recipient_from_user
      tool: update_scheduled_transaction
      when: has(args.recipient) && args.recipient != tx.recipient
      condition: user_turns.exists(t, t.contains(args.recipient.lowerAscii()))
      reason: A new recipient must be one the user gave.
    - id: recurring_amount_kept
      tool: update_scheduled_transaction
      when: tx.recurring && has(args.amount)
      condition: args.amount <= tx.amount * 1.5
      reason: A recurring payment grows by half at most in one change.
"""
# a tool runtime that prints YAML (AgentDojo's): ids are ints, the date and the time stay text
SCHEDULED = "- amount: 50.0\n  date: 2022-04-01\n  at: 10:30\n  id: 6\n  recipient: SE3550000000054910000003\n" \
            "  recurring: true\n- amount: 1100.0\n  date: '2022-04-04'\n  id: 7\n  recipient: US12\n  recurring: false\n"


def test_records_are_read_from_yaml_and_python_repr_results():
    def bank(said: str, args: dict, result: str = SCHEDULED) -> list[str]:
        cid = "s1"
        msgs = [UserMessage(content=said),
                AssistantMessage(content=None, tool_calls=[_call("get_scheduled_transactions", {}, cid)]),
                ToolMessage(tool_call_id=cid, content=result)]
        found = ActionChecker(parse_policy(BANK).actions).check(
            msgs, AssistantMessage(content=None, tool_calls=[_call("update_scheduled_transaction", args)]))
        return [d.rule for d in found if d.hold]
    assert bank("move my rent (id 6) to CH93 0076 2011", {"id": 6, "recipient": "US133000000121212121212"}) == \
        ["action:recipient_from_user"]
    assert bank("send id 6 to us133000000121212121212 from now on", {"id": 6, "recipient": "US133000000121212121212"}) == []
    assert bank("raise it", {"id": 6, "amount": 100.0}) == ["action:recurring_amount_kept"]
    assert bank("raise it", {"id": 7, "amount": 5000.0}) == []  # not recurring
    # Python's repr of a list of dicts (a runtime that prints objects) reads the same
    flow = "[{'id': 6, 'amount': 50.0, 'recipient': 'SE35', 'recurring': True}]"
    assert bank("raise it", {"id": 6, "amount": 100.0}, flow) == ["action:recurring_amount_kept"]
    assert bank("raise it", {"id": 6, "amount": 100.0}, "No scheduled transactions: try later") == []


def test_dates_with_the_month_by_name_are_read_numeric_day_month_orders_are_not():
    worded = PACK.replace("{system_prompt: 'Today is (\\d{4}-\\d\\d-\\d\\d)'}", "{system_prompt: 'Today is ([^.]+)'}")
    assert worded != PACK
    pending = {**ORDER, "status": "pending", "placed_at": "January 2nd, 2025 at 3:15 pm"}
    msgs = dialogue(("get_order", {"order_id": "O1"}, pending), system="Today is Monday, 10 March 2025.")
    assert [(d.rule, d.hold) for d in check(msgs, "cancel_order", {"order_id": "O1"}, worded)[1]] == \
        [("action:cancel_window", False)]
    recent = {**pending, "placed_at": "Mar 1, 2025"}
    msgs = dialogue(("get_order", {"order_id": "O1"}, recent), system="Today is Monday, 10 March 2025.")
    assert check(msgs, "cancel_order", {"order_id": "O1"}, worded)[1] == []
    # 01/02/2025 is the 1st of February or the 2nd of January: not read, so the rule is not judged
    unclear = {**pending, "placed_at": "01/02/2025"}
    msgs = dialogue(("get_order", {"order_id": "O1"}, unclear), system="Today is Monday, 10 March 2025.")
    assert check(msgs, "cancel_order", {"order_id": "O1"}, worded)[1] == []


def test_now_from_a_yaml_result_field_or_a_bare_date_result_and_never_from_an_error():
    pack = PACK.replace("now: [{header: x-now}, {system_prompt: 'Today is (\\d{4}-\\d\\d-\\d\\d)'}]",
                        "now: [{tool: get_time, field: now}, {tool: get_current_day}]")
    pending = {**ORDER, "status": "pending", "placed_at": "2025-01-01T00:00:00"}

    def held(tool: str, text: str) -> list[str]:
        msgs = dialogue(("get_order", {"order_id": "O1"}, pending), system="no date here")
        msgs[-1:-1] = [AssistantMessage(content=None, tool_calls=[_call(tool, {}, "t1")]),
                       ToolMessage(tool_call_id="t1", content=text)]  # the result as the tool printed it
        return [d.rule for d in check(msgs, "cancel_order", {"order_id": "O1"}, pack=pack)[1]]
    assert held("get_time", "now: 2025-06-01 09:00\nzone: UTC") == ["action:cancel_window"]  # YAML
    assert held("get_current_day", "2025-06-01") == ["action:cancel_window"]  # a bare date
    assert held("get_current_day", "2025-01-05") == []
    assert held("get_current_day", "Error: clock unavailable since 2025-06-01") == []  # no time: not judged
