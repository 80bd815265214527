"""The shipped packs' action checks over what tools really return (hypothesis): records of the
right shape with values of the wrong type or format, YAML and Python-repr results, errors, prose,
arguments that are not JSON. Whatever comes, a check of a draft

- never raises (the pipeline would fail open, and the draft would go out unchecked, noted);
- names only the draft's own calls, each finding with a rule id;
- gives the same findings read ahead (``prepare`` first, as the pipeline does while the agent
  writes) or not, and the same for the same dialogue built afresh (findings are kept by content).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inception.actions.engine import ActionChecker
from policies.loader import load_policy
from policies.messages import AssistantMessage, SystemMessage, ToolCall, ToolMessage, UserMessage

EXAMPLES = int(os.environ.get("REIN_HYPOTHESIS_EXAMPLES", "25"))
PROPERTY = settings(max_examples=EXAMPLES * 4, deadline=None, derandomize=EXAMPLES <= 25,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PACKS = Path(__file__).resolve().parents[1] / "examples" / "policies"
CHECKERS = {name: ActionChecker(load_policy(str(PACKS / f"{name}.yaml")).actions) for name in ("airline", "retail", "banking")}

IDS = ["ABC123", "XYZ789", "#W2611340", "credit_card_4938634", "gift_card_1", "HAT235", "O1", "U-1"]
DATES = ["2024-05-18", "2024-05-18T10:00:00", "May 18, 2024", "18/05/2024", "yesterday", "", "2024-13-45"]
SCALARS = (st.none() | st.booleans() | st.integers(-10**6, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(IDS + DATES + ["economy", "business", "basic_economy", "pending", "delivered", "$80.00"])
           | st.text(max_size=20))
KEYS = ["reservation_id", "user_id", "order_id", "item_id", "cabin", "flights", "flight_number", "date", "status",
        "passengers", "payment_methods", "payment_id", "amount", "created_at", "insurance", "total_baggages",
        "nonfree_baggages", "membership", "items", "variants", "price", "recipient", "origin", "destination",
        "flight_type", "source", "balance"]
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6), max_leaves=25)
RECORDS = st.dictionaries(st.sampled_from(KEYS), VALUES, min_size=1, max_size=10)


def _tools(name: str) -> list[str]:
    settings_ = CHECKERS[name].settings
    return sorted(set(settings_.tools) | {s.tool for s in getattr(settings_, "rules", []) if isinstance(getattr(s, "tool", None), str)})


def _as_text(value: Any, how: str) -> str:
    if how == "json":
        return json.dumps(value)
    if how == "yaml":
        return yaml.safe_dump(value, sort_keys=False)
    if how == "repr":
        return repr(value)
    return how  # prose or an error, as written


@st.composite
def dialogues(draw: Any) -> tuple[str, list, AssistantMessage]:
    pack = draw(st.sampled_from(sorted(CHECKERS)))
    names = _tools(pack) + ["get_user_details", "get_order_details", "get_reservation_details", "lookup"]
    messages: list = [SystemMessage(content=draw(st.sampled_from(["Today is 2024-05-15.", "You are an agent.",
                                                                  "The current time is 2024-05-15 15:00:00 EST."])))]
    messages.append(UserMessage(content=draw(st.sampled_from(["hi, reservation ABC123", "cancel order #W2611340",
                                                              "yes", "send 100 to GB29NWBK60161331926819", ""]))))
    for k in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(names))
        args = draw(st.dictionaries(st.sampled_from(KEYS), SCALARS, max_size=3))
        how = draw(st.sampled_from(["json", "json", "yaml", "repr", "Error: not found", "Reservation cancelled."]))
        result = _as_text(draw(RECORDS | VALUES), how)
        messages.append(AssistantMessage(content=None, tool_calls=[ToolCall(
            id=f"r{k}", function={"name": name, "arguments": json.dumps(args)})]))
        messages.append(ToolMessage(tool_call_id=f"r{k}", content=result))
        if draw(st.booleans()):
            messages.append(UserMessage(content=draw(st.sampled_from(["yes", "no", "go ahead", "wait", "ok do it"]))))
    calls = []
    for k in range(draw(st.integers(1, 3))):
        args = draw(st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=5))
        raw = draw(st.sampled_from([json.dumps(args), json.dumps(args), "{not json", "[]", "null", '"text"']))
        calls.append(ToolCall(id=f"d{k}", function={"name": draw(st.sampled_from(names)), "arguments": raw}))
    return pack, messages, AssistantMessage(content=None, tool_calls=calls)


# Records of the shapes the airline pack reads (a reservation, a user), each field then perhaps
# dropped or replaced by any value: the rules bind them and run on whatever is left.
RESERVATION = {"reservation_id": "ABC123", "user_id": "ann_1", "origin": "BOS", "destination": "MSP",
               "flight_type": "round_trip", "cabin": "basic_economy", "created_at": "2024-05-14T10:00:00",
               "flights": [{"origin": "BOS", "destination": "MSP", "flight_number": "HAT235", "date": "2024-05-18",
                            "price": 122},
                           {"origin": "MSP", "destination": "BOS", "flight_number": "HAT298", "date": "2024-05-20",
                            "price": 127}],
               "passengers": [{"first_name": "Ann", "last_name": "Lee", "dob": "1967-12-12"},
                              {"first_name": "Noah", "last_name": "Lee", "dob": "1968-01-06"}],
               "payment_history": [{"payment_id": "credit_card_4938634", "amount": 498}],
               "total_baggages": 1, "nonfree_baggages": 0, "insurance": "no"}
USER = {"user_id": "ann_1", "name": {"first_name": "Ann", "last_name": "Lee"}, "membership": "silver",
        "payment_methods": {"credit_card_4938634": {"source": "credit_card", "id": "credit_card_4938634"},
                            "gift_card_1": {"source": "gift_card", "amount": 40, "id": "gift_card_1"}},
        "reservations": ["ABC123"], "saved_passengers": []}
WRITES = {"cancel_reservation": {"reservation_id": "ABC123"},
          "update_reservation_flights": {"reservation_id": "ABC123", "cabin": "economy", "payment_id": "gift_card_1",
                                         "flights": [{"flight_number": "HAT235", "date": "2024-05-18"},
                                                     {"flight_number": "HAT298", "date": "2024-05-21"}]},
          "update_reservation_baggages": {"reservation_id": "ABC123", "total_baggages": 3, "nonfree_baggages": 1,
                                          "payment_id": "credit_card_4938634"},
          "update_reservation_passengers": {"reservation_id": "ABC123", "passengers": [{"first_name": "Ann"}]},
          "book_reservation": {"user_id": "ann_1", "origin": "BOS", "destination": "MSP", "flight_type": "one_way",
                               "cabin": "economy", "flights": [{"flight_number": "HAT235", "date": "2024-05-18"}],
                               "passengers": [{"first_name": "Ann"}], "payment_methods": [{"payment_id": "gift_card_1",
                                                                                         "amount": 100}],
                               "total_baggages": 0, "nonfree_baggages": 0, "insurance": "no"},
          "send_certificate": {"user_id": "ann_1", "amount": 100}}


@st.composite
def perturbed(draw: Any, value: Any, depth: int = 0) -> Any:
    """``value`` with some of its fields dropped or replaced, at any depth."""
    roll = draw(st.integers(0, 9))
    if roll == 0:
        return draw(VALUES)
    if isinstance(value, dict) and depth < 3:
        out = {}
        for key, inner in value.items():
            if draw(st.integers(0, 7)) != 0:  # most fields kept
                out[key] = draw(perturbed(inner, depth + 1))
        return out
    if isinstance(value, list) and depth < 3:
        return [draw(perturbed(inner, depth + 1)) for inner in value[: draw(st.integers(0, len(value)))]]
    return value


@st.composite
def airline_dialogues(draw: Any) -> tuple[str, list, AssistantMessage]:
    how = draw(st.sampled_from(["json", "json", "yaml", "repr"]))
    messages: list = [SystemMessage(content="The current time is 2024-05-15 15:00:00 EST."),
                      UserMessage(content="hi, I am ann_1, reservation ABC123")]
    fetched = [("get_user_details", {"user_id": "ann_1"}, USER),
               ("get_reservation_details", {"reservation_id": "ABC123"}, RESERVATION)]
    for k, (name, args, record) in enumerate(fetched):
        messages.append(AssistantMessage(content=None, tool_calls=[ToolCall(
            id=f"r{k}", function={"name": name, "arguments": json.dumps(args)})]))
        messages.append(ToolMessage(tool_call_id=f"r{k}", content=_as_text(draw(perturbed(record)), how)))
    messages.append(UserMessage(content=draw(st.sampled_from(["yes", "yes, for Ann only", "go ahead", "no"]))))
    name = draw(st.sampled_from(sorted(WRITES)))
    args = draw(perturbed(WRITES[name]))
    return "airline", messages, AssistantMessage(content=None, tool_calls=[ToolCall(
        id="d0", function={"name": name, "arguments": json.dumps(args)})])


CASES = dialogues() | airline_dialogues()


def _seen(found: list) -> list[tuple[str, str, bool]]:
    return sorted((d.call_id or "", d.rule or "", bool(d.hold), d.evidence) for d in found)


@PROPERTY
@given(CASES)
def test_a_check_never_raises_and_names_only_the_drafts_calls(case):
    pack, messages, draft = case
    found = ActionChecker(CHECKERS[pack].settings).check(messages, draft)
    ids = {c.id for c in draft.tool_calls}
    for d in found:
        assert d.call_id in ids
        assert d.rule and d.rule.startswith("action:") and d.evidence


@PROPERTY
@given(CASES)
def test_read_ahead_or_not_and_afresh_the_findings_are_the_same(case):
    pack, messages, draft = case
    plain = _seen(ActionChecker(CHECKERS[pack].settings).check(messages, draft))
    ahead = ActionChecker(CHECKERS[pack].settings)
    ahead.prepare(messages)
    assert _seen(ahead.check(messages, draft)) == plain
    shared = CHECKERS[pack]  # a long-lived checker that saw other dialogues before (the proxy's)
    shared.prepare(messages)
    rebuilt = [m.model_copy(deep=True) for m in messages]
    assert _seen(shared.check(rebuilt, draft.model_copy(deep=True))) == plain
