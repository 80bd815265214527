"""What the action check keeps from one draft to the next (issue 18's cost target), and that what it
keeps never stands in for another dialogue: states are found by content (the proxy builds new
message objects for every request), a long dialogue's prefix is read once, and a dialogue that
differs in one earlier message is read as itself."""
from __future__ import annotations

import json

from inception.actions import ActionChecker
from inception.actions.dialogue_state import States
from inception.dialogue import pair_calls
from policies.loader import parse_policy
from policies.messages import AssistantMessage, ToolCall, ToolMessage, UserMessage, parse_messages

PACK = """
name: shop
actions:
  builtins: {unknown_id: plan, repeated_failed_write: plan}
  records:
    order:
      from: [{tool: get_order, key: args.order_id}]
      fields: {status: {type: enum, values: [pending, shipped]}}
  tools:
    cancel_order: {confirm: true, bind: {order: args.order_id}}
    get_order: {write: false}
  rules:
    - id: not_shipped
      tool: cancel_order
      condition: order.status == "pending"
      reason: A shipped order cannot be cancelled.
"""


def _call(name: str, args: dict, cid: str) -> ToolCall:
    return ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})


def _step(name: str, args: dict, result: str, cid: str) -> list:
    return [AssistantMessage(content=None, tool_calls=[_call(name, args, cid)]), ToolMessage(tool_call_id=cid, content=result)]


def _order(oid: str, status: str) -> list:
    return _step("get_order", {"order_id": oid}, json.dumps({"order_id": oid, "status": status}), f"g{oid}")


def _fresh(messages: list) -> list:
    """The same dialogue in new objects, as the proxy parses every request anew."""
    return parse_messages([m.model_dump(exclude_unset=True, mode="json") for m in messages])


CANCEL = AssistantMessage(content=None, tool_calls=[_call("cancel_order", {"order_id": "O-1"}, "d1")])


def _rules(checker: ActionChecker, messages: list) -> list[str]:
    return sorted(d.rule for d in checker.check(_fresh(messages), CANCEL))


def test_a_dialogue_that_differs_in_one_earlier_message_is_judged_as_itself():
    """Same length, same last turns, same call ids: only the status inside an earlier result
    differs. Whatever the order the dialogues come in, each gets its own findings."""
    checker = ActionChecker(parse_policy(PACK).actions)
    tail = [UserMessage(content="ok"), AssistantMessage(content="Cancel O-1?"), UserMessage(content="yes")]
    shipped = [UserMessage(content="cancel O-1 please"), *_order("O-1", "shipped"), *tail]
    pending = [UserMessage(content="cancel O-1 please"), *_order("O-1", "pending"), *tail]
    for _ in range(2):
        assert _rules(checker, shipped) == ["action:not_shipped"]
        assert _rules(checker, pending) == []
    # a dialogue that continues the shipped one but re-fetched the order since: the new result rules
    refetched = [*shipped, *_order("O-1", "pending"), UserMessage(content="yes")]
    assert _rules(checker, refetched) == []
    assert _rules(checker, shipped) == ["action:not_shipped"]


def test_a_user_turn_said_in_another_dialogue_is_no_yes_here():
    checker = ActionChecker(parse_policy(PACK).actions)
    base = [UserMessage(content="cancel O-1 please"), *_order("O-1", "pending"), AssistantMessage(content="Sure?")]
    assert _rules(checker, [*base, UserMessage(content="yes, go ahead")]) == []
    assert _rules(checker, [*base, UserMessage(content="what is the refund?")]) == ["action:builtin/unconfirmed_write"]
    assert _rules(checker, [*base, UserMessage(content="yes, go ahead")]) == []


def test_a_long_dialogues_prefix_is_read_once_whatever_objects_carry_it():
    """Each request of a tool loop re-sends the dialogue in new objects; the check reads only the
    messages past the longest prefix it has seen (``States.read`` counts the messages read)."""
    checker = ActionChecker(parse_policy(PACK).actions)
    dialogue = [UserMessage(content="cancel O-1 please")]
    for k in range(40):
        dialogue += _order(f"X-{k}", "shipped")
    dialogue += [*_order("O-1", "pending"), UserMessage(content="yes")]
    read = []
    for end in [*range(3, len(dialogue), 2), len(dialogue)]:  # a draft after every step, as a tool loop makes
        checker.check(_fresh(dialogue[:end]), CANCEL)
        read.append(checker.states.read)
    assert read[-1] == len(dialogue)  # every message read once in all
    before = checker.states.read
    checker.check(_fresh(dialogue), CANCEL)  # the same dialogue again, in new objects: nothing to read
    assert checker.states.read == before


def test_states_pair_results_as_the_dialogue_module_does_even_with_reused_and_missing_ids():
    """Agents reuse call ids and tools answer without them: the incremental pairing gives the
    results ``inception.dialogue.pair_calls`` gives, for every prefix, read in any order."""
    raw = [{"role": "user", "content": "go"},
           {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                                                 {"id": "a", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
           {"role": "tool", "tool_call_id": "a", "content": "r1"},
           {"role": "assistant", "tool_calls": [{"id": "a", "type": "function", "function": {"name": "h", "arguments": "{}"}}]},
           {"role": "tool", "tool_call_id": "a", "content": "r2"},
           {"role": "tool", "tool_call_id": "zz", "content": "r3"},
           {"role": "tool", "tool_call_id": "", "content": "r4"},
           {"role": "assistant", "tool_calls": [{"id": "b", "type": "function", "function": {"name": "k", "arguments": "{}"}},
                                                 {"id": "c", "type": "function", "function": {"name": "k", "arguments": "{}"}}]},
           {"role": "tool", "tool_call_id": "c", "content": "r5"},
           {"role": "user", "content": "and?"},
           {"role": "tool", "tool_call_id": "b", "content": "r6"}]
    msgs = parse_messages(raw)

    def shape(calls):
        return [(c.call.id, c.name, c.result, c.index) for c in calls]

    for order in (range(len(msgs) + 1), reversed(range(len(msgs) + 1)), [3, 9, 5, 11, 1, 7, 2]):
        states = States()
        for end in order:
            assert shape(states.of(_fresh(msgs[:end])).calls) == shape(pair_calls(msgs[:end])), end


def test_repeated_checks_of_a_draft_return_equal_findings_in_new_objects():
    checker = ActionChecker(parse_policy(PACK).actions)
    msgs = [UserMessage(content="cancel O-1 please"), *_order("O-1", "shipped"), UserMessage(content="now")]
    first = checker.check(_fresh(msgs), CANCEL)
    again = checker.check(_fresh(msgs), CANCEL)
    assert [d.model_dump() for d in first] == [d.model_dump() for d in again] and first
    assert all(a is not b for a, b in zip(first, again))  # a caller may change its findings freely
    assert [d.model_dump(exclude_unset=True) for d in first] == [d.model_dump(exclude_unset=True) for d in again]
    assert [d.model_fields_set for d in first] == [d.model_fields_set for d in again]
    first[0].evidence, first[0].hold = "changed by a caller", not first[0].hold
    third = checker.check(_fresh(msgs), CANCEL)
    assert [d.model_dump() for d in third] == [d.model_dump() for d in again]


def test_a_read_tree_walked_once_cuts_a_value_as_the_walk_per_call_does():
    from inception.actions.projection import project, projector
    from policies.cel_names import ALL

    value = {"status": "open", "total": 5.0, "items": [{"sku": "A", "qty": 1, "note": "x"}, {"sku": "B", "qty": 2}],
             "cards": {"c1": {"kind": "debit", "n": 1}, "c2": {"kind": "credit"}}, "tags": ["a", "b"], "extra": {"k": 1}}
    trees = [ALL, {"status": ALL}, {"items": {"[]": {"sku": ALL}}}, {"items": {}}, {"tags": {}, "total": ALL},
             {"cards": {"[args.card]": {"kind": ALL}}}, {"cards": {"[]": {"kind": ALL}}, "status": ALL},
             {"items": {"[]": ALL}, "missing": ALL}, {"extra": {}}]
    for read in trees:
        for args in ({"card": "c1"}, {"card": "nope"}, {}):
            assert repr(projector(read)(value, args)) == repr(project(value, read, args)), (read, args)
