"""Records that share an id (issue 19: two transfers to one IBAN, a gift card in a reservation and in
the user's wallet): a value is checked against the one record the sentence also quotes — another of
its values, one of its text fields, or the side the id is on in a sentence about such records — and
left alone when nothing tells the records apart, or the sentence speaks of no record at all."""
from __future__ import annotations

import json

import pytest

from policies.messages import parse_messages
from refiners.base import TurnContext
from refiners.evidence import Evidence
from refiners.factuality import deterministic_pass

FRIEND = "GB29NWBK60161331926819"
TRANSACTIONS = f"""- amount: 200.0
  date: '2022-02-12'
  id: 2
  recipient: {FRIEND}
  recurring: false
  sender: me
  subject: New year gift
- amount: 10.0
  date: '2022-03-07'
  id: 5
  recipient: me
  recurring: false
  sender: {FRIEND}
  subject: Sushi dinner
- amount: 1000.0
  date: '2022-03-04'
  id: 4
  recipient: US122000000121212121212
  recurring: false
  sender: me
  subject: 'Purchase at Apple Store: iPhone 3GS'"""


def reply(draft: str, result: str = TRANSACTIONS) -> tuple[str, list[str]]:
    messages = parse_messages([
        {"role": "user", "content": "What did I pay recently?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_most_recent_transactions", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": result}])
    fixed, found, _ = deterministic_pass(draft, Evidence.from_context(TurnContext(messages=messages)))
    return fixed, found


@pytest.mark.parametrize(("draft", "want"), [
    # the record's date quoted beside the amount
    (f"2. **Gift** - $237.00 to IBAN: {FRIEND} on 2022-02-12", f"2. **Gift** - $200.00 to IBAN: {FRIEND} on 2022-02-12"),
    # its subject quoted ("New" in it is the record's word, not a sign the amount is a new one)
    (f"**New year gift** - $237.00 to IBAN {FRIEND}", f"**New year gift** - $200.00 to IBAN {FRIEND}"),
    # its amount quoted beside the date
    (f"$200.00 to {FRIEND} on 2022-02-21", f"$200.00 to {FRIEND} on 2022-02-12"),
    # the side the IBAN is on, in a sentence about a transaction
    (f"The most recent transaction from your friend (IBAN: {FRIEND}) was for £47.00.",
     f"The most recent transaction from your friend (IBAN: {FRIEND}) was for £10.00."),
    # a name with digits before a list dash is no term of a sum
    ("4. **Purchase at Apple Store: iPhone 3GS** - $1037.00 to IBAN: US122000000121212121212",
     "4. **Purchase at Apple Store: iPhone 3GS** - $1000.00 to IBAN: US122000000121212121212"),
])
def test_the_record_the_sentence_quotes_is_the_one_checked(draft, want):
    fixed, found = reply(draft)
    assert fixed == want and len(found) == 1


@pytest.mark.parametrize("draft", [
    # nothing tells the two records apart
    f"Your transfer with {FRIEND} was $47.00.",
    # an action the agent is about to take names no record, whatever side the IBAN is on
    f"I will send back £188.00 to your friend's account ({FRIEND}).",
    # both records quoted in one sentence
    f"The New year gift to {FRIEND} and the Sushi dinner from {FRIEND} came to $47.00.",
])
def test_nothing_changes_when_no_one_record_is_quoted(draft):
    assert reply(draft) == (draft, [])


def test_a_text_field_inside_an_id_quotes_nothing():
    wallet = json.dumps({"payment_methods": {"gift_card_8190333": {"source": "gift_card", "amount": 280,
                                                                   "id": "gift_card_8190333"}}})
    reservation = json.dumps({"reservation_id": "UM3OG5", "payment_history": [
        {"payment_id": "gift_card_8190333", "amount": 830}]})
    messages = parse_messages([
        {"role": "user", "content": "My reservation UM3OG5, please."},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_user_details", "arguments": "{}"}},
            {"id": "c2", "type": "function", "function": {"name": "get_reservation_details", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": wallet},
        {"role": "tool", "tool_call_id": "c2", "content": reservation}])
    draft = "- **Payment:** Paid with a gift card (ID: gift_card_8190333) for $867"
    fixed, found, _ = deterministic_pass(draft, Evidence.from_context(TurnContext(messages=messages)))
    assert fixed == draft and found == []
