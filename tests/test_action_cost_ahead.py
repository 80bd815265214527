"""What the read ahead works out for each record a call may name (``inception/actions/ahead.py``):
a CEL context per tool and record fetched last, the verdicts of the programs that read no argument,
the evidence's parts of those records. None of it may change a finding: a call naming any record
gets what a checker that never read ahead gives, and the work it saves is not done again on the
path (counted, not timed)."""
from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings, strategies as st

import inception.actions.rule_check as rule_check
from inception.actions import ActionChecker
from inception.actions.ahead import CANDIDATES
from inception.actions.cel_context import CelVariables
from policies.loader import parse_policy
from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

PACK = r"""
name: shop
actions:
  now: [{system_prompt: 'Today is (\d{4}-\d\d-\d\d)'}]
  records:
    order:
      from: [{tool: get_order, key: args.order_id}]
      fields: {order_id: string, status: string, placed_at: date, user_id: string}
    user:
      from: [{tool: get_user, key: args.user_id}]
      fields: {tier: string}
  tools:
    change_order:
      bind: {order: args.order_id, user: order.user_id}
      arguments: {order_id: string, address: string}
    get_*: {write: false}
  rules:
    - id: not_shipped
      tool: change_order
      condition: order.status == "pending"
      reason: A shipped order cannot be changed.
    - id: recent
      tool: change_order
      when: user.tier != "gold"
      condition: today - order.placed_at <= duration("720h") || last_user.contains("please make an exception")
      reason: An order is changed within 30 days.
    - id: has_address
      tool: change_order
      condition: size(args.address) > 3
      reason: The new address is written out.
"""
SYSTEM = SystemMessage(content="You help shoppers. Today is 2025-06-10.")
_SETTINGS = []
EXAMPLES = int(os.environ.get("REIN_HYPOTHESIS_EXAMPLES", "25"))


def _checker() -> ActionChecker:
    if not _SETTINGS:
        _SETTINGS.append(parse_policy(PACK).actions)
    return ActionChecker(_SETTINGS[0])


def _step(name: str, args: dict, result: dict, cid: str) -> list:
    call = ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})
    return [AssistantMessage(content=None, tool_calls=[call]), ToolMessage(tool_call_id=cid, content=json.dumps(result))]


def _dialogue(orders: list[tuple[str, str, str, str]], last_user: str = "yes") -> list:
    """Orders fetched in this order (id, status, placed_at, user), then each user, then a turn."""
    out: list = [SYSTEM, UserMessage(content="change my order")]
    for k, (oid, status, placed, user) in enumerate(orders):
        out += _step("get_order", {"order_id": oid}, {"order_id": oid, "status": status, "placed_at": placed,
                                                      "user_id": user}, f"o{k}")
    for k, user in enumerate(dict.fromkeys(o[3] for o in orders)):
        out += _step("get_user", {"user_id": user}, {"user_id": user, "tier": "gold" if user.endswith("9") else "basic"},
                     f"u{k}")
    return out + [AssistantMessage(content="Shall I?"), UserMessage(content=last_user)]


def _draft(oid: str, address: str = "12 Elm Street") -> AssistantMessage:
    call = ToolCall(id="d0", function={"name": "change_order", "arguments": json.dumps({"order_id": oid, "address": address})})
    return AssistantMessage(content=None, tool_calls=[call])


def _found(checker: ActionChecker, messages: list, d: AssistantMessage) -> list[tuple]:
    return [(x.rule, x.hold, x.evidence) for x in checker.check(messages, d)]


ORDERS = [("O-1", "shipped", "2025-06-01", "U-1"), ("O-2", "pending", "2025-01-01", "U-1"),
          ("O-3", "pending", "2025-06-05", "U-9"), ("O-4", "shipped", "2025-02-01", "U-2")]


def _counting(monkeypatch) -> dict[str, list]:
    """Every program run and every variable converted, from here on."""
    seen: dict[str, list] = {"run": [], "made": []}
    judge, context = rule_check._judge, CelVariables.context

    def counted_judge(program, ctx):
        seen["run"].append(program)
        return judge(program, ctx)

    def counted_context(self, scope, wanted):
        wanted = {name: w._replace(make=lambda name=name, make=w.make: seen["made"].append(name) or make())
                  for name, w in wanted.items()}
        return context(self, scope, wanted)
    monkeypatch.setattr(rule_check, "_judge", counted_judge)
    monkeypatch.setattr(CelVariables, "context", counted_context)
    return seen


def test_a_call_naming_any_record_fetched_lately_finds_it_converted_and_its_verdicts_known(monkeypatch):
    messages = _dialogue(ORDERS)
    for oid, *_ in ORDERS:  # O-4 was fetched last; O-1 first
        expected = _found(_checker(), messages, _draft(oid))
        checker = _checker()
        checker.prepare(messages)
        seen = _counting(monkeypatch)
        assert _found(checker, messages, _draft(oid)) == expected, oid
        # on the path: only the arguments converted, only the program that reads them run
        assert seen["made"] == ["args"], (oid, seen["made"])
        arguments_read = {r.condition for plan in checker.tools.ruled for r in plan.rules if r.rule.id == "has_address"}
        assert set(seen["run"]) == arguments_read, oid
        monkeypatch.undo()


def test_a_record_beyond_the_candidates_is_judged_on_the_path_as_itself(monkeypatch):
    many = [(f"O-{k}", "shipped" if k % 2 else "pending", "2025-06-01", "U-1") for k in range(CANDIDATES + 2)]
    messages = _dialogue(many)
    checker = _checker()
    checker.prepare(messages)
    seen = _counting(monkeypatch)
    assert _found(checker, messages, _draft("O-1")) == _found(_checker(), messages, _draft("O-1"))
    assert "order" in seen["made"]  # not read ahead: converted now
    assert any(d[0] == "action:not_shipped" for d in _found(checker, messages, _draft("O-1")))


def test_a_verdict_never_stands_in_for_a_record_of_the_same_key_with_other_content():
    """Two dialogues with an order O-1 that differs (shipped in one, pending in the other), checked
    in turn by one checker, read ahead or not: each is judged as itself."""
    shipped = _dialogue([("O-1", "shipped", "2025-06-01", "U-1")])
    pending = _dialogue([("O-1", "pending", "2025-06-01", "U-1")])
    checker = _checker()
    for k in range(3):
        for messages, held in ((shipped, True), (pending, False)):
            if k % 2:
                checker.prepare(messages)
            rules = [d[0] for d in _found(checker, messages, _draft("O-1"))]
            assert ("action:not_shipped" in rules) is held, (k, rules)


def test_a_new_user_turn_runs_the_programs_that_read_it_again():
    late = [("O-2", "pending", "2025-01-01", "U-1")]
    checker = _checker()
    asked = _dialogue(late, "yes")
    checker.prepare(asked)
    assert any(d[0] == "action:recent" for d in _found(checker, asked, _draft("O-2")))
    excepted = _dialogue(late, "yes, please make an exception")
    checker.prepare(excepted)
    assert not any(d[0] == "action:recent" for d in _found(checker, excepted, _draft("O-2")))


_ORDER = st.tuples(st.sampled_from(["O-1", "O-2", "O-3", "O-4", "O-5", "O-6", "O-7", "O-8"]),
                   st.sampled_from(["shipped", "pending"]), st.sampled_from(["2025-06-01", "2025-01-01", "June 1"]),
                   st.sampled_from(["U-1", "U-9", "U-2"]))
_CASE = st.tuples(st.lists(_ORDER, max_size=9), st.sampled_from(["yes", "please make an exception"]),
                  st.sampled_from(["O-1", "O-2", "O-5", "O-8", "O-404"]), st.sampled_from(["12 Elm Street", "x"]),
                  st.booleans())


@settings(max_examples=EXAMPLES * 3, deadline=None, derandomize=EXAMPLES <= 25, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_CASE, min_size=1, max_size=6))
def test_one_long_lived_checker_reading_ahead_judges_every_dialogue_as_a_fresh_one(cases):
    """Any run of dialogues (records fetched again with other content, more than the candidates, a
    record never fetched), each read ahead or not, by one checker: the findings of a fresh checker."""
    checker = _checker()
    for orders, turn, oid, address, ahead in cases:
        messages = _dialogue(orders, turn)
        if ahead:
            checker.prepare(messages)
        assert _found(checker, messages, _draft(oid, address)) == _found(_checker(), messages, _draft(oid, address))


def test_the_check_after_a_read_ahead_takes_its_facts_only_for_the_very_same_messages(monkeypatch):
    checker = _checker()
    messages = _dialogue([("O-1", "pending", "2025-06-01", "U-1")])
    checker.prepare(messages, hand_over=True)  # as the pipeline does: it checks this very list next
    states = []
    monkeypatch.setattr(checker.states, "of", lambda m, of=checker.states.of: states.append(len(m)) or of(m))
    assert _found(checker, messages, _draft("O-1")) == []
    assert states == []  # handed over: the dialogue not looked up by content
    assert _found(checker, messages, _draft("O-1", "x")) == _found(_checker(), messages, _draft("O-1", "x"))
    assert states == [len(messages)]  # once only: the second check finds it by content
    # a message swapped in the same list, or one added, after the read ahead: found by content
    checker.prepare(messages, hand_over=True)
    messages[3] = ToolMessage(tool_call_id="o0", content=json.dumps({"order_id": "O-1", "status": "shipped",
                                                                     "placed_at": "2025-06-01", "user_id": "U-1"}))
    assert [d[0] for d in _found(checker, messages, _draft("O-1"))] == ["action:not_shipped"]
    checker.prepare(messages, hand_over=True)
    messages.append(UserMessage(content="please make an exception"))
    assert _found(checker, messages, _draft("O-1")) == _found(_checker(), messages, _draft("O-1"))


def test_without_a_hand_over_a_message_changed_in_place_after_the_read_ahead_is_seen():
    """``prepare`` alone promises nothing about the messages: the check reads them by content."""
    checker = _checker()
    messages = _dialogue([("O-1", "shipped", "2025-06-01", "U-1")])
    checker.prepare(messages)
    messages[3].content = json.dumps({"order_id": "O-1", "status": "pending", "placed_at": "2025-06-01", "user_id": "U-1"})
    assert _found(checker, messages, _draft("O-1")) == _found(_checker(), messages, _draft("O-1")) == []


def test_a_hand_over_no_check_takes_is_freed_by_the_next_check_of_its_list():
    checker = _checker()
    messages = _dialogue([("O-1", "pending", "2025-06-01", "U-1")])
    checker.prepare(messages, hand_over=True)
    read = AssistantMessage(content=None, tool_calls=[ToolCall(id="r", function={"name": "get_order", "arguments": "{}"})])
    assert checker.check(messages, read) == [] and not checker._handed  # a read: nothing to check, freed all the same
    checker.prepare(messages, hand_over=True)
    assert checker.check_reply(messages, AssistantMessage(content="Done.")) == [] and not checker._handed


CARDS_PACK = r"""
name: cards
actions:
  records:
    user:
      from: [{tool: get_user, key: args.user_id}]
      fields: {user_id: string, cards: map}
  tools:
    pay:
      bind: {user: args.user_id}
      arguments: {user_id: string, card: string}
    get_*: {write: false}
  rules:
    - id: credit_only
      tool: pay
      condition: user.cards[args.card].kind == "credit"
      reason: Credit cards only.
    - id: every_card_has_a_limit
      tool: pay
      condition: user.cards.all(k, user.cards[k].limit > 0)
      reason: Every card needs a limit.
"""


def test_a_map_entry_an_argument_picks_holds_what_a_rule_walking_the_map_reads():
    """The picked entry (``user.cards[args.card]``) is read for ``kind``; a rule walking every
    entry reads ``limit`` of it too: the call's value holds both, as the read ahead's does, so
    the walk is judged alike read ahead or not, in any thread (it once lacked ``limit``)."""
    settings = parse_policy(CARDS_PACK).actions
    cards = {"c1": {"kind": "credit", "limit": 0}, "c2": {"kind": "debit", "limit": 5}}
    messages = [SYSTEM, UserMessage(content="pay with c1"),
                *_step("get_user", {"user_id": "U1"}, {"user_id": "U1", "cards": cards}, "g")]
    for card in ("c1", "c2", "zz"):
        call = ToolCall(id="p", function={"name": "pay", "arguments": json.dumps({"user_id": "U1", "card": card})})
        d = AssistantMessage(content=None, tool_calls=[call])
        fresh = _found(ActionChecker(settings), messages, d)
        assert "action:every_card_has_a_limit" in [f[0] for f in fresh], card
        ahead = ActionChecker(settings)
        ahead.prepare(messages)
        assert _found(ahead, messages, d) == fresh, card
        other = ActionChecker(settings)  # a verdict kept from a call that picked another card
        _found(other, messages, _pay("c2" if card != "c2" else "c1"))
        assert _found(other, messages, d) == fresh, card


def _pay(card: str) -> AssistantMessage:
    call = ToolCall(id="q", function={"name": "pay", "arguments": json.dumps({"user_id": "U1", "card": card})})
    return AssistantMessage(content=None, tool_calls=[call])
