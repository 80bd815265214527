"""What the rule checks give the CEL library in place of its own, for speed, must answer as its own
does: the extension functions rein swaps for C ones, and the read ahead's values that hold every
entry an argument may pick."""
from __future__ import annotations

import random

import cel
import cel.stdlib
import pytest

from inception.actions.rule_check import _extensions
from policies.cel_names import ALL, covers, widened

TEXTS = ["James", "MASON", "o'Brien-SMITH", "ÀÉÎ àéî", "ǅ ß İ", "a\ud800B", "", "Z[`a{@", "日本 ABC"]


@pytest.mark.parametrize("name, theirs", [("lowerAscii", cel.stdlib.lower_ascii), ("upperAscii", cel.stdlib.upper_ascii)])
def test_a_swapped_function_gives_the_librarys_text(name, theirs):
    ours = _extensions({name})[name]
    rng = random.Random(18)
    texts = TEXTS + ["".join(chr(rng.choice([rng.randint(0, 127), rng.randint(0, 0x2FFF)])) for _ in range(rng.randint(0, 12)))
                     for _ in range(2000)]
    assert [ours(t) for t in texts] == [theirs(t) for t in texts]
    assert ours(["A", "b"]) == theirs(["A", "b"])  # a list of letters: the library's own answer
    for odd in (5, None, b"AB"):  # no text: an error from both, so the rule is not judged
        with pytest.raises(Exception):
            theirs(odd)
        with pytest.raises(Exception):
            ours(odd)


def test_a_rule_calling_a_swapped_function_answers_as_with_the_librarys():
    program = cel.compile('!ps.exists(p, u.contains(p.lowerAscii())) || ps.all(p, u.contains(p.lowerAscii()))')
    for names, said in [(["James", "Mason"], "change the cabin for mason"), (["James"], "james"), ([], "x"),
                        (["ÉMILE", "Zoë"], "émile and zoë")]:
        answers = [program.execute(cel.Context(variables={"ps": names, "u": said}, functions=functions))
                   for functions in (_extensions({"lowerAscii"}), {"lowerAscii": cel.stdlib.lower_ascii})]
        assert answers[0] == answers[1]
    assert _extensions({"max"})["max"] is cel.stdlib.max_  # the others stay the library's


def test_a_widened_read_serves_every_pick_it_replaced():
    read = {"cards": {"[args.card_id]": {"kind": ALL}, "[#]": {}}, "tier": ALL}
    wide = widened(read)
    assert "[args.card_id]" not in str(wide) and covers(wide, read)
    assert widened({"cards": {"[args.a]": {"x": ALL}, "[args.b]": {"y": ALL}}}) == {"cards": {"[]": {"x": ALL, "y": ALL}}}


def test_the_id_walk_without_paths_gives_the_ids_of_the_walk_with_them():
    from inception.actions.builtins import _id_values, _ids
    cases = [{"reservation_id": " XEWRD9 ", "cabin": "economy", "payment_id": "gift_card_1",
              "flights": [{"flight_number": "HAT030", "date": "2024-05-13"}, {"flight_id": "F-2"}]},
             {"user_id": "u1", "passengers": [{"first_name": "A", "dob": "1990-01-01"}], "item_ids": ["i-1", " i-2", 3],
              "payment_methods": [{"payment_id": "credit_card_7", "amount": 10}], "meta": {"orderId": "O-9", "x": [[{"id": "deep"}]]}},
             {"recipientIds": ["a", "b"], 5: "five", "nested": [[], {}, "loose", {"ID": "caps"}]}, {}]
    for args in cases:
        found: list[str] = []
        _id_values(args, found)
        assert found == [v for _, v in _ids(args, "")]


def test_a_call_naming_any_of_many_records_looked_up_is_judged_as_a_fresh_checker_judges_it():
    """The read ahead converts the record fetched last (``ahead``): whichever record a call names,
    in whatever order, the findings are those of a checker that read nothing ahead."""
    import json

    from inception.actions import ActionChecker
    from policies.loader import parse_policy
    from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage
    pack = parse_policy("""
name: orders
actions:
  records:
    order: {from: [{tool: get_order, key: args.order_id}], fields: {status: string, total: number, user_id: string}}
    user: {from: [{tool: get_user, key: args.user_id}], fields: {cards: map}}
  tables: {limits: {small: 100.0}}
  tools:
    refund: {bind: {order: args.order_id, user: order.user_id}}
    get_*: {write: false}
  rules:
    - {id: open_only, tool: refund, condition: 'order.status == "open"', reason: Open orders only.}
    - {id: limit, tool: refund, condition: 'order.total <= tables.limits.small', reason: Small refunds only.}
    - {id: card, tool: refund, condition: 'user.cards[args.card].ok', reason: A good card.}
""")
    dialogue = [SystemMessage(content="You help."), UserMessage(content="refund my orders")]

    def step(name, args, result, cid):
        call = ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})
        return [AssistantMessage(content=None, tool_calls=[call]), ToolMessage(tool_call_id=cid, content=json.dumps(result))]
    dialogue += step("get_user", {"user_id": "U"}, {"cards": {"c1": {"ok": True}, "c2": {"ok": False}}}, "u")
    checker, n = ActionChecker(pack.actions), 0
    for k in range(8):
        dialogue += step("get_order", {"order_id": f"O{k}"}, {"status": "open" if k % 2 else "shipped",
                                                              "total": 50.0 * k, "user_id": "U"}, f"o{k}")
        for j in sorted(range(k + 1), key=lambda j: (j * 5) % (k + 1)):
            for card in ("c1", "c2"):
                n += 1
                d = AssistantMessage(content=None, tool_calls=[ToolCall(id=f"d{n}", function={
                    "name": "refund", "arguments": json.dumps({"order_id": f"O{j}", "card": card})})])
                checker.prepare(dialogue)
                found = [(x.rule, x.evidence) for x in checker.check(dialogue, d)]
                assert found == [(x.rule, x.evidence) for x in ActionChecker(pack.actions).check(dialogue, d)], (k, j, card)
