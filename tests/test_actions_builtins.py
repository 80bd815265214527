"""The built-in action checks, which need no rule from the operator: an unconfirmed write, an id
nobody showed, a failed write sent again, a reply claiming an action that did not happen."""
from __future__ import annotations

import json

from inception.actions import ActionChecker
from policies.actions import BUILTIN_MODES
from policies.loader import parse_policy
from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

PACK = """
name: shop
actions:
  builtins: {unknown_id: plan, repeated_failed_write: plan}
  tools:
    cancel_order: {confirm: true}
    get_order: {write: false}
"""
ORDER = json.dumps({"order_id": "O-1001", "status": "pending"})


def _call(name: str, args: dict, cid: str) -> ToolCall:
    return ToolCall(id=cid, function={"name": name, "arguments": json.dumps(args)})


def step(name: str, args: dict, result: str, cid: str) -> list:
    return [AssistantMessage(content=None, tool_calls=[_call(name, args, cid)]), ToolMessage(tool_call_id=cid, content=result)]


def draft(name: str, args: dict) -> AssistantMessage:
    return AssistantMessage(content=None, tool_calls=[_call(name, args, "draft")])


def found(messages, d: AssistantMessage, pack: str = PACK) -> list[tuple[str, bool]]:
    checker = ActionChecker(parse_policy(pack).actions)
    return [(x.rule, x.hold) for x in checker.check(messages, d)]


LOOKED_UP = [UserMessage(content="Please cancel order O-1001"), *step("get_order", {"order_id": "O-1001"}, ORDER, "a")]


# ---- unconfirmed_write ------------------------------------------------------------------------
def test_a_write_the_pack_marks_for_confirmation_is_held_without_a_yes():
    msgs = [*LOOKED_UP, AssistantMessage(content="Cancel O-1001, refund to your card. Shall I?"),
            UserMessage(content="hmm, what about the refund?")]
    assert found(msgs, draft("cancel_order", {"order_id": "O-1001"})) == [("action:builtin/unconfirmed_write", True)]


def test_a_yes_in_the_turn_before_allows_it():
    msgs = [*LOOKED_UP, AssistantMessage(content="Shall I cancel O-1001?"), UserMessage(content="Yes, go ahead.")]
    assert found(msgs, draft("cancel_order", {"order_id": "O-1001"})) == []


def test_a_yes_stands_after_a_failed_attempt_and_is_spent_by_a_success():
    said_yes = [*LOOKED_UP, AssistantMessage(content="Shall I?"), UserMessage(content="Yes please"),
                *step("cancel_order", {"order_id": "O-1001"}, "Error: payment service unavailable", "b"),
                AssistantMessage(content="That failed; try again later?"), UserMessage(content="Try it again now")]
    assert found(said_yes, draft("cancel_order", {"order_id": "O-1001"})) == []
    spent = [*LOOKED_UP, AssistantMessage(content="Shall I?"), UserMessage(content="Yes please"),
             *step("cancel_order", {"order_id": "O-1001"}, ORDER, "b"),
             AssistantMessage(content="Done."), UserMessage(content="Now cancel O-1001 again")]
    assert found(spent, draft("cancel_order", {"order_id": "O-1001"})) == [("action:builtin/unconfirmed_write", True)]


def test_a_tool_the_pack_does_not_mark_needs_no_yes():
    pack = PACK.replace("cancel_order: {confirm: true}", "cancel_order: {confirm: false}")
    assert found([*LOOKED_UP, UserMessage(content="hmm")], draft("cancel_order", {"order_id": "O-1001"}), pack) == []


# ---- unknown_id ---------------------------------------------------------------------------------
def test_an_id_argument_nobody_showed_is_held():
    msgs = [*LOOKED_UP, UserMessage(content="yes")]
    assert found(msgs, draft("cancel_order", {"order_id": "O-1002"})) == [("action:builtin/unknown_id", True)]
    # nested, and under a write the pack does not list (a write by its name's verb)
    assert found(msgs, draft("refund_payment", {"payment": {"payment_id": "card_77"}})) == \
        [("action:builtin/unknown_id", True)]


def test_an_id_the_user_said_or_a_tool_returned_passes_whatever_its_case():
    msgs = [UserMessage(content="my card is CARD_77"), *step("get_order", {"order_id": "O-1001"}, ORDER, "a"),
            UserMessage(content="yes")]
    assert found(msgs, draft("cancel_order", {"order_id": "o-1001"})) == []
    assert found(msgs, draft("refund_payment", {"payment_id": "card_77"})) == []


def test_an_id_the_operators_system_prompt_names_is_not_unknown():
    # a deployment that signs the user in names the account in the system prompt
    system = SystemMessage(content="You help the signed-in customer, account ACC-58213.")
    msgs = [system, UserMessage(content="close my savings pot please"), UserMessage(content="yes")]
    assert found(msgs, draft("close_pot", {"account_id": "ACC-58213", "pot": "savings"})) == []
    assert found(msgs[1:], draft("close_pot", {"account_id": "ACC-58213", "pot": "savings"})) == \
        [("action:builtin/unknown_id", True)]


def test_a_read_is_never_judged_for_its_ids():
    assert found([UserMessage(content="yes")], draft("get_order", {"order_id": "O-9"})) == []


# ---- repeated_failed_write --------------------------------------------------------------------
def test_the_same_failing_write_sent_again_with_other_calls_between_is_held():
    failed = step("send_money", {"to": "O-1001", "amount": 5}, "Error: insufficient funds", "b")
    think = step("calculate", {"expression": "5+0"}, "5", "c")
    msgs = [*LOOKED_UP, *failed, *think]
    assert found(msgs, draft("send_money", {"amount": 5, "to": "O-1001"})) == [("action:builtin/repeated_failed_write", True)]
    assert found(msgs, draft("send_money", {"amount": 4, "to": "O-1001"})) == []


def test_a_retry_after_a_failure_that_says_a_retry_may_pass_is_not_a_repeated_mistake():
    # a server error, overload, rate limit or time-out says nothing against the call itself
    for transient in ('{"status": 503, "message": "upstream unavailable"}', "HTTP 502 Bad Gateway",
                      "Error: request timed out after 30 s", '{"error": {"code": 429, "message": "slow down"}}',
                      "ERROR: the ledger is temporarily unavailable, try again later"):
        msgs = [*LOOKED_UP, *step("send_money", {"to": "O-1001", "amount": 5}, transient, "b")]
        assert found(msgs, draft("send_money", {"to": "O-1001", "amount": 5})) == [], transient
    # a refusal that names a number is still a refusal
    for refusal in ("Error: amount 500 exceeds the daily limit", '{"error": "card 5031 declined"}'):
        msgs = [*LOOKED_UP, *step("send_money", {"to": "O-1001", "amount": 5}, refusal, "b")]
        assert found(msgs, draft("send_money", {"to": "O-1001", "amount": 5})) == [
            ("action:builtin/repeated_failed_write", True)], refusal


def test_a_failure_of_an_earlier_user_turn_does_not_count():
    msgs = [*LOOKED_UP, *step("send_money", {"to": "O-1001", "amount": 5}, "Error: insufficient funds", "b"),
            UserMessage(content="I topped up, try again")]
    assert found(msgs, draft("send_money", {"to": "O-1001", "amount": 5})) == []


def test_a_check_in_off_mode_finds_nothing_and_flag_mode_does_not_hold():
    msgs = [*LOOKED_UP, UserMessage(content="yes")]
    off = PACK.replace("{unknown_id: plan,", "{unknown_id: off,")
    assert found(msgs, draft("cancel_order", {"order_id": "O-1002"}), off) == []
    flag = PACK.replace("{unknown_id: plan,", "{unknown_id: flag,")
    assert found(msgs, draft("cancel_order", {"order_id": "O-1002"}), flag) == [("action:builtin/unknown_id", False)]
    # a pack that says nothing reports an unknown id and a repeated failed write, and holds neither
    quiet = PACK.replace("  builtins: {unknown_id: plan, repeated_failed_write: plan}\n", "")
    assert found(msgs, draft("cancel_order", {"order_id": "O-1002"}), quiet) == [("action:builtin/unknown_id", False)]
    # a stream holds tool-call chunks only when a check may hold the call: none in flag mode
    reporting = parse_policy(quiet).actions.model_copy(update={"builtins": {c: "flag" for c in BUILTIN_MODES}})
    assert not ActionChecker(reporting).covers(["refund_payment"])
    holding = reporting.model_copy(update={"builtins": {**reporting.builtins, "unknown_id": "plan"}})
    assert ActionChecker(holding).covers(["refund_payment"]) and not ActionChecker(holding).covers(["get_order"])


# ---- claimed_action (a check on a text draft) ---------------------------------------------------
def claims(messages, reply: str, pack: str = PACK) -> list[str]:
    checker = ActionChecker(parse_policy(pack).actions)
    return [d.evidence for d in checker.check_reply(messages, AssistantMessage(content=reply))]


def test_a_reply_claiming_an_action_with_no_write_this_turn_is_flagged():
    out = claims([*LOOKED_UP], "Your order O-1001 has been cancelled. Anything else?")
    assert len(out) == 1 and "has been cancelled" in out[0]
    checker = ActionChecker(parse_policy(PACK).actions)
    d = checker.check_reply([*LOOKED_UP], AssistantMessage(content="I've cancelled it."))
    assert [(x.rule, x.hold) for x in d] == [("action:builtin/claimed_action", False)]


def test_a_claim_after_the_matching_write_succeeded_is_fine():
    msgs = [*LOOKED_UP, *step("cancel_order", {"order_id": "O-1001"}, ORDER, "b")]
    assert claims(msgs, "Your order has been cancelled.") == []


def test_a_claim_after_a_tool_nothing_says_only_reads_succeeded_is_not_flagged():
    # the pack lists neither tool and neither name starts with a write verb: the one that may write
    # supports the claim; a tool named as a read does not
    msgs = [*LOOKED_UP, *step("top_up_balance", {"amount": 20}, '{"balance": 45.0}', "b")]
    assert claims(msgs, "I've added $20 to your balance.") == []
    msgs = [*LOOKED_UP, *step("lookup_balance", {"account": "A-1"}, '{"balance": 45.0}', "b")]
    assert len(claims(msgs, "I've added $20 to your balance.")) == 1
    msgs = [*LOOKED_UP, *step("top_up_balance", {"amount": 20}, "Error: card declined", "b")]
    assert len(claims(msgs, "I've added $20 to your balance.")) == 1


def test_an_irregular_verb_names_its_write():
    # "sent" names send_money, which succeeded, though "transaction" names another write of the pack
    pack = PACK + "    update_scheduled_transaction: {write: true}\n"
    msgs = [*LOOKED_UP, *step("send_money", {"to": "O-1001", "amount": 5}, '{"message": "sent"}', "b")]
    assert claims(msgs, "The transaction of $5 has been sent to O-1001.", pack) == []
    assert len(claims(LOOKED_UP, "The transaction of $5 has been sent to O-1001.", pack)) == 1


def test_a_claim_naming_another_write_than_the_one_done_is_flagged():
    msgs = [*LOOKED_UP, *step("update_address", {"order_id": "O-1001"}, ORDER, "b")]
    pack = PACK + "    update_address: {write: true}\n"
    assert claims(msgs, "The address has been updated.", pack) == []
    assert len(claims(msgs, "Your order has been cancelled.", pack)) == 1


def test_a_claim_names_a_write_by_what_its_verb_acts_on_not_by_every_word_of_the_sentence():
    pack = PACK + "    update_passengers: {write: true}\n    update_bags: {write: true}\n"
    msgs = [*LOOKED_UP, *step("cancel_order", {"order_id": "O-1001"}, ORDER, "b")]
    # a refund "per passenger" is about the refund: the write that did happen may have made it
    assert claims(msgs, "The refund of $38 per passenger has been credited back to your card.", pack) == []
    # what was added is the bag, passive or active: no bag write happened
    assert len(claims(msgs, "Additionally, one checked bag has been added to your order.", pack)) == 1
    assert len(claims(msgs, "I've added a checked bag to your order.", pack)) == 1


def test_negated_conditional_and_question_claims_are_not_claims():
    for reply in ("Your order has not been cancelled yet.", "Once it has been cancelled you get a mail.",
                  "Should it be cancelled?", "It can't be cancelled: it has shipped."):
        assert claims([*LOOKED_UP], reply) == [], reply


# ---- what the user is told when a held call is dropped -------------------------------------------
def test_the_drop_notice_is_plain_words_without_the_evidence_values():
    from middleware.action_hold import without_dropped
    from middleware.models.testing import as_response

    checker = ActionChecker(parse_policy(PACK).actions)
    d = draft("cancel_order", {"order_id": "O-9999"})
    held = [x for x in checker.check([*LOOKED_UP, UserMessage(content="yes")], d) if x.hold]
    assert [x.rule for x in held] == ["action:builtin/unknown_id"] and "O-9999" in held[0].evidence
    final, notice = without_dropped(as_response(d, "m"), held)
    assert notice == "I did not carry out cancel_order: it refers to something neither you nor our records " \
                     "mentioned in this conversation."
    assert "O-9999" not in notice and "order_id" not in notice
