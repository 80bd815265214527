"""The evidence of a broken rule writes each value only as far as its 80 characters show it
(``evidence._repr_head``): a list's items, projected lazily, are projected and written only
while the text is shorter than that. The text is the same as writing the whole value."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inception.actions.projection import Lazy
from inception.actions.evidence import _repr_head, _short

EXAMPLES = int(os.environ.get("REIN_HYPOTHESIS_EXAMPLES", "300"))
PROPERTY = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# change_trip's rules read today and the arguments; cancel_trip's too (two rules that show today)
TRIPS = r"""
name: trips
actions:
  now: [{system_prompt: 'Today is (\d{4}-\d\d-\d\d)'}]
  tools:
    change_trip: {arguments: {flights: {type: list, items: {number: string, date: date}}}}
    cancel_trip: {arguments: {date: date}}
  rules:
    - {id: not_flown, tool: change_trip, condition: 'args.flights.all(f, f.date >= today)', reason: Flown.}
    - {id: two_at_most, tool: change_trip, condition: 'size(args.flights) <= 2', reason: Too many.}
    - {id: not_past, tool: cancel_trip, condition: 'args.date >= today', reason: Past.}
    - {id: same_day, tool: cancel_trip, condition: 'args.date == today', reason: Not today.}
"""

# a user record read whole by field (tier, name) and at an argument's key (a card)
PAY = """
name: pay
actions:
  records:
    user: {from: [{tool: get_user, key: args.user_id}], fields: {cards: map, tier: string, name: string}}
  tools:
    pay: {bind: {user: args.user_id}}
    get_*: {write: false}
  rules:
    - {id: credit_only, tool: pay, condition: 'user.cards[args.card_id].kind == "credit"', reason: Credit cards only.}
    - {id: gold_only, tool: pay, condition: 'user.tier == "gold"', reason: Gold only.}
    - {id: named, tool: pay, condition: 'user.name.startsWith("Z")', reason: Z only.}
"""

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=40),
                    st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2))])))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=6), st.tuples(inner),
                                                       st.lists(inner, max_size=6).map(tuple),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=5)),
                      max_leaves=25)


def _plain_short(value):
    """``_short`` as it was written first: the whole repr, then cut."""
    if hasattr(value, "isoformat"):
        value = value.isoformat()[:19]
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


@PROPERTY
@given(VALUES, st.integers(0, 200))
def test_the_head_is_the_start_of_the_whole_repr(value, limit):
    whole = repr(value)
    head = _repr_head(value, limit)
    assert whole.startswith(head)
    assert len(head) >= min(limit, len(whole))
    assert _short(value) == _plain_short(value)


@PROPERTY
@given(st.lists(VALUES, max_size=8), st.integers(0, 200))
def test_a_lazy_list_is_projected_only_as_far_as_it_is_written(items, limit):
    projected = []

    def every(v, args):
        projected.append(v)
        return v
    head = _repr_head(Lazy(items, every, {}), limit)
    assert repr(items).startswith(head) and len(head) >= min(limit, len(repr(items)))
    # no item projected that the text does not show
    assert len(projected) == sum(1 for _ in _shown(items, limit))


def _shown(items, limit):
    size = 1
    for n, item in enumerate(items):
        if size >= limit:
            return
        size += (2 if n else 0) + len(repr(item))
        yield item


def test_a_flight_list_shows_its_first_item_only():
    when = datetime(2024, 5, 13, tzinfo=timezone.utc)
    flights = [{"flight_number": f"HAT{n:03}", "date": when} for n in range(4)]
    seen = []
    lazy = Lazy(flights, lambda v, args: seen.append(v) or v, {})
    assert _short(lazy) == _plain_short(flights)
    assert len(seen) == 1


def test_a_records_part_kept_for_one_call_is_never_another_calls():
    """The part of the evidence a record gives is kept (``evidence.Pieces``): a call that picks
    another entry of the same record, by a value that writes alike (1 and "1"), or names another
    record gets its own text, the same as a checker that kept nothing would write."""
    from inception.actions import ActionChecker
    from policies.loader import parse_policy
    from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
    import json
    pack = parse_policy(PAY)
    users = {"U-1": {"tier": "basic", "cards": {"c1": {"kind": "debit"}, "1": {"kind": "gift"}, "c2": {"kind": "debit"}}},
             "U-2": {"tier": "silver", "cards": {"c1": {"kind": "debit"}}}}
    dialogue = [SystemMessage(content="You help."), UserMessage(content="pay for U-1 and U-2")]
    for uid, body in users.items():
        call = ToolCall(id=f"g{uid}", function={"name": "get_user", "arguments": json.dumps({"user_id": uid})})
        dialogue += [AssistantMessage(content=None, tool_calls=[call]), ToolMessage(tool_call_id=f"g{uid}", content=json.dumps(body))]
    drafts = [{"user_id": u, "card_id": c} for u in ("U-1", "U-2") for c in ("c1", "c2", "1", 1, None)]

    def evidence(checker, args, n):
        d = AssistantMessage(content=None, tool_calls=[ToolCall(id=f"d{n}", function={"name": "pay", "arguments": json.dumps(args)})])
        return [(x.rule, x.evidence) for x in checker.check(dialogue, d)]

    kept = ActionChecker(pack.actions)
    for n, args in enumerate(drafts * 2):
        assert evidence(kept, args, n) == evidence(ActionChecker(pack.actions), args, n), args


def test_a_text_cut_at_80_is_the_same_whatever_the_item_where_it_stops():
    # the item after the 79th character is not written (``_repr_head(kept=)``): every length around it
    for n in range(60, 90):
        for rest in ([], [""], ["x"], ["", ""], [{}], [()], ["y" * 30]):
            for value in ([("a" * n)] + rest, ["b", "a" * n] + rest, tuple([("a" * n)] + rest),
                          {"k": "a" * n, **{f"r{i}": r for i, r in enumerate(rest)}}):
                assert _short(value) == _plain_short(value), (n, rest, value)
                assert _short(Lazy(list(value), lambda v, args: v, {})) == _plain_short(list(value))


def test_the_arguments_are_shown_as_the_agent_sent_them_written_once_for_every_rule_they_break():
    """``args.flights=[{... 'date': '2024-05-13'}...`` (not a typed time's repr), the same part for
    each rule that shows them, written once for the call."""
    import json

    from inception.actions import ActionChecker
    from inception.actions import evidence as evidence_module
    from policies.loader import parse_policy
    from policies.messages import AssistantMessage, SystemMessage, ToolCall, UserMessage

    pack = parse_policy(TRIPS)
    flights = [{"number": "F1", "date": "2024-05-13"}, {"number": "F2", "date": "2024-05-20"}, {"number": "F3", "date": "2024-05-21"}]
    draft = AssistantMessage(content=None, tool_calls=[ToolCall(id="c", function={
        "name": "change_trip", "arguments": json.dumps({"flights": flights})})])
    written = []
    real = evidence_module.written
    evidence_module.written = lambda *a: written.append(a[0]) or real(*a)
    try:
        found = ActionChecker(pack.actions).check([SystemMessage(content="Today is 2024-05-15."),
                                                   UserMessage(content="change it")], draft)
    finally:
        evidence_module.written = real
    assert [d.rule for d in found] == ["action:not_flown", "action:two_at_most"]
    part = "args.flights=[{'number': 'F1', 'date': '2024-05-13'}, {'number': 'F2', 'date': '2024-05-20'}"
    assert all(part in d.evidence for d in found), [d.evidence for d in found]
    assert written.count("args") == 1


def test_today_is_written_by_the_read_ahead_once_for_every_rule_that_shows_it():
    """A dialogue's "now" and "today" are known before a call is: the read ahead writes their
    parts (``Pieces.write_ahead``), a check that breaks rules showing them writes none, and the
    text is the one a checker that read nothing ahead writes."""
    import json

    from inception.actions import ActionChecker
    from inception.actions import evidence as evidence_module
    from policies.loader import parse_policy
    from policies.messages import AssistantMessage, SystemMessage, ToolCall, UserMessage

    pack = parse_policy(TRIPS)
    dialogue = [SystemMessage(content="Today is 2024-05-15."), UserMessage(content="change it")]
    drafts = [AssistantMessage(content=None, tool_calls=[ToolCall(id="c", function={
                  "name": "change_trip", "arguments": json.dumps({"flights": [{"number": "F1", "date": "2024-05-13"}]})})]),
              AssistantMessage(content=None, tool_calls=[ToolCall(id="d", function={
                  "name": "cancel_trip", "arguments": json.dumps({"date": "2024-05-01"})})])]
    written = []
    real = evidence_module.written
    evidence_module.written = lambda *a: written.append(a[0]) or real(*a)
    try:
        checker = ActionChecker(pack.actions)
        checker.prepare(dialogue, hand_over=True)
        assert written.count("today") == 1  # one part for the three rules that show it
        written.clear()
        found = [d for draft in drafts for d in checker.check(dialogue, draft)]
        assert "today" not in written
    finally:
        evidence_module.written = real
    fresh = [d for draft in drafts for d in ActionChecker(pack.actions).check(dialogue, draft)]
    assert [(d.rule, d.evidence) for d in found] == [(d.rule, d.evidence) for d in fresh]
    assert [d.rule for d in found] == ["action:not_flown", "action:not_past", "action:same_day"]
    assert all("today='2024-05-15T00:00:00'" in d.evidence for d in found), [d.evidence for d in found]


def test_a_fetched_records_parts_are_written_by_the_read_ahead_not_on_the_path():
    """The read ahead writes the parts of the records it bound for each rule that shows them
    (``Pieces.write_ahead``); a check breaking those rules over the same records writes none of
    them, and writes the part an argument picks itself. Texts as a checker that read nothing ahead."""
    import json

    from inception.actions import ActionChecker
    from inception.actions import evidence as evidence_module
    from policies.loader import parse_policy
    from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

    pack = parse_policy(PAY)
    dialogue = [SystemMessage(content="You help."), UserMessage(content="pay for U-1")]
    for uid, tier in (("U-2", "silver"), ("U-1", "basic")):
        call = ToolCall(id=f"g{uid}", function={"name": "get_user", "arguments": json.dumps({"user_id": uid})})
        body = {"tier": tier, "name": f"Ann {uid}", "cards": {"c1": {"kind": "debit"}}}
        dialogue += [AssistantMessage(content=None, tool_calls=[call]), ToolMessage(tool_call_id=f"g{uid}", content=json.dumps(body))]
    drafts = [AssistantMessage(content=None, tool_calls=[ToolCall(id=f"p{uid}", function={
        "name": "pay", "arguments": json.dumps({"user_id": uid, "card_id": "c1"})})]) for uid in ("U-1", "U-2")]
    written = []
    real = evidence_module.written
    evidence_module.written = lambda *a: written.append((a[0], a[1])) or real(*a)
    try:
        checker = ActionChecker(pack.actions)
        checker.prepare(dialogue, hand_over=True)
        ahead = list(written)
        written.clear()
        found = [[(d.rule, d.evidence) for d in checker.check(dialogue, draft)] for draft in drafts]
    finally:
        evidence_module.written = real
    # both users fetched are candidates: their tier and name parts written ahead, the card part not
    assert sorted(ahead) == sorted([("user", ("name",)), ("user", ("tier",))] * 2)
    assert [w for w in written if w[0] == "user"] == [("user", ("cards",))] * 2  # picked by args.card_id
    fresh = [[(d.rule, d.evidence) for d in ActionChecker(pack.actions).check(dialogue, draft)] for draft in drafts]
    assert found == fresh
    assert [r for r, _ in found[0]] == ["action:credit_only", "action:gold_only", "action:named"]
    assert "user.tier='basic'" in found[0][1][1] and "user.tier='silver'" in found[1][1][1]
