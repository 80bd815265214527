"""Structural detectors: each fires on its error and stays quiet on the look-alike, no model call."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import inception
from inception.structural import failure_in
from policies.loader import load_policy
from policies.messages import parse_messages

SET = Path(__file__).parent / "data" / "dialogues"
STRUCTURAL = {"tool_failure", "action_loop", "malformed_tool_call/unknown_tool",
              "malformed_tool_call/schema_violation", "ambiguous_request/vague_reference", "untrusted_instruction"}
TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"],
    "additionalProperties": False}}}]


class NoModel:
    name = "must-not-be-called"

    async def complete(self, request):
        raise AssertionError("the structural policy called a model")


def cascade():
    return inception.build(load_policy("structural"), NoModel())


def user(text):
    return {"role": "user", "content": text}


def call(name, args, cid, result=None):
    out = [{"role": "assistant", "content": None, "tool_calls": [
        {"id": cid, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]}]
    if result is not None:
        out.append({"role": "tool", "tool_call_id": cid, "content": result})
    return out


async def labels_of(messages, tools=TOOLS):
    d = await cascade().diagnose(parse_messages(messages), tools)
    assert d.model_calls == 0
    return {e.label for e in d.errors}, d


@pytest.mark.parametrize("content, failed", [
    ('{"error": "database timeout"}', True),
    ('{"ok": false, "reason": "locked"}', True),
    ('{"status": "failed"}', True),
    ('{"status_code": 503}', True),
    ("Error: service unavailable", True),
    ("Traceback (most recent call last):\n  ...", True),
    ("could not find order W1", True),
    ("HTTP 404 Not Found", True),
    ('{"name": "Error-Free Gel Pen", "stock": 4}', False),
    ("Error-Free Gel Pen, 12 pack, in stock", False),
    ('{"status": "ok", "error": null}', False),
    ('{"errors": []}', False),
    ("Fatal Error (board game), in stock", False),
    ('[{"error_rate": 0.1}]', False),
])
def test_what_reads_as_a_tool_failure(content, failed):
    assert failure_in(content) is failed


async def test_tool_failure_fires_in_the_current_turn_only():
    failing = [user("where is W1?"), *call("get_order", {"order_id": "W1"}, "c1", '{"error": "timeout"}')]
    found, d = await labels_of(failing)
    assert found == {"tool_failure"}
    assert 'get_order returned: {"error": "timeout"}' in d.errors[0].evidence
    assert "report the internal error" in d.plan and d.recovery_tools == ["report_internal_error"]
    later = [*failing, {"role": "assistant", "content": "Sorry, it timed out."}, user("ok thanks")]
    assert (await labels_of(later))[0] == set()


async def test_tool_failure_recovered_by_a_retry_is_quiet():
    retried = [user("where is W1?"), *call("get_order", {"order_id": "W1"}, "c1", '{"error": "timeout"}'),
               *call("get_order", {"order_id": "W1"}, "c2", '{"status": "shipped"}')]
    assert (await labels_of(retried))[0] == set()


async def test_action_loop_needs_the_same_call_and_the_same_result():
    same = [user("status of W1?"), *call("get_order", {"order_id": "W1"}, "c1", '{"status": "pending"}'),
            *call("get_order", {"order_id": "W1"}, "c2", '{"status": "pending"}')]
    found, d = await labels_of(same)
    assert found == {"action_loop"} and "called 2 times" in d.errors[0].evidence
    progress = [*same[:3], *call("get_order", {"order_id": "W1"}, "c2", '{"status": "shipped"}')]
    assert (await labels_of(progress))[0] == set()
    other_args = [*same[:3], *call("get_order", {"order_id": "W2"}, "c2", '{"status": "pending"}')]
    assert (await labels_of(other_args))[0] == set()


async def test_a_draft_repeating_a_call_is_a_loop():
    draft = [user("status?"), *call("get_order", {"order_id": "W1"}, "c1", '{"status": "pending"}'),
             *call("get_order", {"order_id": "W1"}, "c2")]
    assert (await labels_of(draft))[0] == {"action_loop"}


async def test_unknown_tool_and_schema_violation_in_the_draft():
    found, d = await labels_of([user("x"), *call("get_orders", {"order_id": "W1"}, "c1")])
    assert found == {"malformed_tool_call/unknown_tool"} and "tools available: get_order" in d.errors[0].evidence
    found, d = await labels_of([user("x"), *call("get_order", {"id": "W1"}, "c1")])
    assert found == {"malformed_tool_call/schema_violation"} and "'order_id' is a required property" in d.errors[0].evidence
    found, _ = await labels_of([user("x"), *call("get_order", {"order_id": "W1"}, "c1")])
    assert found == set()


async def test_a_broken_schema_holds_no_call():
    """The schema is checked only when a call breaks it (or cannot be validated): a broken schema
    reports nothing, whether its errors come out as violations or as an exception."""
    broken = [{"type": "object", "properties": {"order_id": {"type": "strin"}}},      # raises while validating
              {"type": "object", "required": "order_id"},                              # yields errors
              {"type": "object", "properties": {"order_id": {"type": "string", "minLength": "2"}}}]
    for schema in broken:
        tools = [{"type": "function", "function": {"name": "get_order", "parameters": schema}}]
        for args in ({"order_id": "W1"}, {"id": "W1"}, {"order_id": 5}):
            found, _ = await labels_of([user("x"), *call("get_order", args, "c1")], tools)
            assert found == set(), (schema, args)
    fine = [{"type": "function", "function": {"name": "get_order", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string", "minLength": 2}}}}}]
    found, d = await labels_of([user("x"), *call("get_order", {"order_id": "W"}, "c1")], fine)
    assert found == {"malformed_tool_call/schema_violation"} and "is too short" in d.errors[0].evidence


async def test_rein_owned_tools_are_never_unknown():
    found, _ = await labels_of([user("x"), *call("ask_clarification", {"question": "Which?"}, "c1")])
    assert found == set()


async def test_vague_reference_fires_with_rivals_and_not_when_resolvable():
    listed = [user("my orders?"), {"role": "assistant", "content": "You have W1001 (desk lamp) and W1002 (office chair)."}]
    found, d = await labels_of([*listed, user("cancel it")])
    assert found == {"ambiguous_request/vague_reference"} and "W1001, W1002" in d.errors[0].evidence
    assert d.recovery_tools == ["ask_clarification"]
    for resolvable in ("cancel W1002", "cancel the lamp one", "cancel the first one", "thanks, that is all"):
        assert (await labels_of([*listed, user(resolvable)]))[0] == set(), resolvable


def test_detectors_are_chosen_by_the_taxonomy():
    policy = load_policy("structural")
    narrow = policy.model_copy(update={"taxonomy": [e for e in policy.taxonomy if e.type == "tool_failure"]})
    assert [d.name for d in inception.build(narrow).detectors] == ["tool_failure"]
    off = policy.model_copy(update={"inception": policy.inception.model_copy(update={"structural": False})})
    assert inception.build(off).detectors == []


def test_disabled_inception_builds_the_no_op():
    assert isinstance(inception.build(load_policy("passthrough")), inception.NoInception)


def _dataset():
    return [pytest.param(p, id=p.stem) for p in sorted(SET.glob("*.json"))]


@pytest.mark.parametrize("path", _dataset())
async def test_labelled_set_structural_cascade(path):
    """Every structural label found, nothing found on clean dialogues (incl. the hard ones)."""
    data = json.loads(path.read_text())
    found, _ = await labels_of(data["messages"], data["tools"])
    assert found == set(data["labels"]) & STRUCTURAL, data.get("note")


def test_labelled_set_is_big_enough_and_covers_every_type():
    data = [json.loads(p.read_text()) for p in SET.glob("*.json")]
    assert len(data) >= 80
    labels = {lab for d in data for lab in d["labels"]}
    assert labels == {e.label for e in load_policy("default").taxonomy}
    assert sum(1 for d in data if not d["labels"]) >= 25 and sum(1 for d in data if d["hard"]) >= 15


async def test_odd_tool_lists_never_break_the_turn():
    odd = [{"type": "function", "function": "get_order"}, "junk", {"type": "code_interpreter"},
           {"type": "function", "function": {"name": "get_order", "parameters": "not a schema"}}]
    c = cascade()
    draft = [user("where is W1?"), *call("get_order", {"order_id": "W1"}, "c1")]
    assert (await c.diagnose(parse_messages(draft), odd)).errors == []
    assert c.check_draft(parse_messages(draft[:1]), odd, parse_messages(draft)[1]).errors == []
    assert "think" in c.owned_tools(odd)


async def test_a_teams_own_detector_joins_the_cascade_and_gets_the_packs_plan():
    from inception.base import Detection

    class FinalSale:
        name = "final_sale"

        def detect(self, d):
            if "return" in d.last_user.lower() and any("final sale" in (c.result or "") for c in d.calls):
                return [Detection(type="policy_violation", subtype="final_sale", evidence="marked final sale")]
            return []

    c = inception.Cascade(load_policy("retail"), None, detectors=[FinalSale()])
    dialogue = [user("return the scarf from W9"),
                *call("get_order", {"order_id": "W9"}, "c1", '{"items": ["scarf"], "note": "final sale"}')]
    d = await c.diagnose(parse_messages(dialogue), TOOLS)
    assert d.header() == "policy_violation/final_sale"
    assert d.plan.startswith("The item is final sale (marked final sale)")
    assert d.recovery_tools == ["escalate_to_care_desk"]
