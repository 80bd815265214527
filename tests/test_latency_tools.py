"""A tool list checked once (issue 24, middleware/proxy/routes/validate.py ``CheckedTools``): a body
whose tools passed before is parsed to the same request, and refused with the same error, as when
it is checked from scratch; a list that failed is never kept."""
from __future__ import annotations

import copy

import orjson
import pytest

from middleware.proxy.errors import ProxyError
from middleware.proxy.routes import validate
from policies.limits import MAX_DEPTH

TOOLS = [{"type": "function", "function": {"name": "get_order", "description": "Look an order up.", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}, "items": {"type": "array", "items": {
        "type": "object", "properties": {"sku": {"type": "string"}}}}}, "required": ["order_id"]}}},
    {"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}}]
MESSAGES = [{"role": "user", "content": "Where is A1?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
                "name": "get_order", "arguments": "{\"order_id\": \"A1\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"status\": \"shipped\"}"}]


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


def _bodies() -> dict[str, dict]:
    many = [MESSAGES[0]] * (validate.CHUNK + 5)
    return {
        "valid": {"model": "m", "messages": MESSAGES, "tools": TOOLS, "temperature": 0.2},
        "valid, long dialogue (chunked)": {"model": "m", "messages": many, "tools": TOOLS},
        "bad message": {"model": "m", "messages": [{"role": "user", "content": 7}], "tools": TOOLS},
        "bad message, chunked": {"messages": [*many, {"role": "nobody"}], "tools": TOOLS},
        "bad field": {"messages": MESSAGES, "tools": TOOLS, "stream": "sometimes"},
        "deep outside the tools": {"messages": MESSAGES, "tools": TOOLS, "metadata": {"x": _nested(MAX_DEPTH)}},
        "no messages": {"tools": TOOLS},
        "unknown tool call id": {"messages": [MESSAGES[0], MESSAGES[2]], "tools": TOOLS},
    }


def _outcome(raw: bytes):
    try:
        data, request = validate.parse_body(raw)
    except ProxyError as e:
        return ("error", e.status, e.message, e.code, e.param)
    return ("ok", data, request.model_dump(), request.model_fields_set, request.tools is not None)


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(validate, "TOOLS", validate.CheckedTools())
    return validate


@pytest.mark.parametrize("name", list(_bodies()))
def test_a_body_whose_tools_passed_before_parses_as_when_checked_from_scratch(fresh, name):
    raw = orjson.dumps(_bodies()[name])
    scratch = _outcome(raw)  # checked from scratch (it may keep its list: dropped below)
    fresh.TOOLS.kept.clear()
    validate.parse_body(orjson.dumps({"messages": MESSAGES, "tools": copy.deepcopy(TOOLS)}))  # the list passes
    assert len(fresh.TOOLS.kept) == 1
    assert _outcome(raw) == scratch


@pytest.mark.parametrize("tools", [
    [{"type": "function", "function": {"name": ""}}],                 # fails validation
    [{"type": "function", "function": {"name": "f", "parameters": {"a": _nested(MAX_DEPTH)}}}],  # too deep
])
def test_a_tool_list_that_failed_is_not_kept(fresh, tools):
    raw = orjson.dumps({"messages": MESSAGES, "tools": tools})
    first = _outcome(raw)
    assert first[0] == "error"
    assert fresh.TOOLS.kept == {}
    assert _outcome(raw) == first


def test_the_kept_lists_are_bounded(monkeypatch):
    checked = validate.CheckedTools(size=3, max_bytes=2000)
    monkeypatch.setattr(validate, "TOOLS", checked)
    for k in range(10):
        tools = [{"type": "function", "function": {"name": f"t{k}"}}]
        validate.parse_body(orjson.dumps({"messages": MESSAGES[:1], "tools": tools}))
        assert len(checked.kept) <= 3
    big = [{"type": "function", "function": {"name": "big", "description": "x" * 3000}}]
    assert checked.key({"tools": big}) is None
