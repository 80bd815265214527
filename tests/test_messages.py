"""Messages round-trip: OpenAI JSON -> ours -> OpenAI JSON, and through LangChain, losslessly."""
from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import ValidationError

from middleware.adapters.lc_messages import from_langchain, to_langchain
from policies.messages import dump_messages, parse_messages

DIALOGUE = [
    {"role": "system", "content": "Be brief.", "x_vendor": {"cache": True}},
    {"role": "developer", "content": "Prefer tools."},
    {"role": "user", "content": [{"type": "text", "text": "Refund A1"}], "name": "bob"},
    {"role": "assistant", "refusal": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "refund", "arguments": '{"id":  "A1" }'},
         "x_trace": 7},
        {"id": "c2", "type": "function", "function": {"name": "lookup", "arguments": "not json"}}]},
    {"role": "tool", "tool_call_id": "c1", "content": "Error: order not found", "name": "refund"},
    {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "ok"}]},
    {"role": "assistant", "content": None},
    {"role": "assistant", "content": ""},
    {"role": "assistant", "content": "Done.", "tool_calls": []},
]


def test_openai_json_round_trip_keeps_every_field():
    assert dump_messages(parse_messages(DIALOGUE)) == DIALOGUE


def test_langchain_round_trip_returns_the_same_openai_json():
    lc = to_langchain(parse_messages(DIALOGUE))
    assert dump_messages(from_langchain(lc)) == DIALOGUE


def test_langchain_side_sees_native_types_and_parsed_tool_calls():
    lc = to_langchain(parse_messages(DIALOGUE))
    assert [type(m) for m in lc[:6]] == [SystemMessage, SystemMessage, HumanMessage, AIMessage,
                                          ToolMessage, ToolMessage]
    assert lc[2].name == "bob"
    assert lc[3].tool_calls == [{"name": "refund", "args": {"id": "A1"}, "id": "c1", "type": "tool_call"}]
    assert lc[3].invalid_tool_calls[0]["args"] == "not json"
    assert lc[4].tool_call_id == "c1" and lc[4].content == "Error: order not found"


def test_native_langchain_messages_convert_to_openai_json():
    lc = [SystemMessage("sys"), HumanMessage("hi", id="h1"),
          AIMessage("", tool_calls=[{"name": "add", "args": {"a": 1}, "id": "t1", "type": "tool_call"}]),
          ToolMessage("2", tool_call_id="t1", name="add", status="error"), AIMessage("two")]
    assert dump_messages(from_langchain(lc)) == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "t1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1}'}}]},
        {"role": "tool", "content": "2", "tool_call_id": "t1"},
        {"role": "assistant", "content": "two"},
    ]


def test_edited_tool_call_args_win_over_the_stale_raw_copy():
    lc = to_langchain(parse_messages(DIALOGUE))[3]
    lc.tool_calls[0]["args"] = {"id": "B2"}
    calls = dump_messages(from_langchain([lc]))[0]["tool_calls"]
    assert calls[0]["function"]["arguments"] == '{"id": "B2"}'
    assert calls[1]["function"]["arguments"] == "not json"  # the untouched one is kept verbatim


def test_edited_content_replaces_a_null_content():
    lc = to_langchain(parse_messages([{"role": "assistant", "content": None}]))[0]
    lc.content = "now text"
    assert dump_messages(from_langchain([lc])) == [{"role": "assistant", "content": "now text"}]


def test_dicts_pass_through_and_unknown_roles_fail_clearly():
    assert dump_messages(from_langchain([{"role": "user", "content": "hi"}])) == [{"role": "user", "content": "hi"}]
    with pytest.raises(ValidationError):
        parse_messages([{"role": "wizard", "content": "x"}])
