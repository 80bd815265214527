"""Fuzz POST /v1/chat/completions from the proxy's own OpenAPI schema with schemathesis:
valid bodies (positive) and bodies that break the schema (negative). Whatever arrives: never a
5xx, never a crash, every error in OpenAI's shape, every stream closed by [DONE] or an error
event. Bounded (a fixed number of examples, no deadline flakiness) to keep the suite fast."""
from __future__ import annotations

import json
import os
from collections import Counter

import orjson
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel
from middleware.proxy import create_app

# Generating bodies for this schema costs ~0.1 s each here, so CI tries 200 in all;
# REIN_FUZZ_EXAMPLES=1000 (per mode) for a longer run.
PER_MODE = int(os.environ.get("REIN_FUZZ_EXAMPLES", "100"))
EXAMPLES = {GenerationMode.POSITIVE: PER_MODE, GenerationMode.NEGATIVE: PER_MODE}


def agent_reply(request):
    # A stand-in agent that always answers; rein's own calls (same model) get text, not JSON,
    # so every LLM stage of the default policy also exercises its fail-open path.
    return "All good."


def build_app():
    return create_app(Settings(policy="default", max_body_bytes=256 * 1024),
                      Engine(FunctionModel(agent_reply), "default"))


def check(response, policy_stream: bool) -> str:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:500]}"
    if status >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        assert body["error"]["type"] and "code" in body["error"], body
        return f"{status}"
    content_type = response.headers.get("content-type") or [""]  # schemathesis keeps header lists
    if (content_type[0] if isinstance(content_type, list) else content_type).startswith("text/event-stream"):
        events = [line[6:] for line in response.text.split("\n") if line.startswith("data: ")]
        assert events, response.text
        if events[-1] != "[DONE]":
            error = orjson.loads(events[-1])["error"]
            assert error["code"] != "internal_error", error
        return "200 stream"
    completion = response.json()
    assert completion["choices"][0]["message"]["role"] == "assistant"
    return "200"


# Every POST route that publishes its schema is fuzzed: the other wire formats join when theirs lands.
ROUTES = ["/v1/chat/completions", "/v1/responses", "/v1/messages"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_fuzz_chat_completions(mode, route):
    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())
    if route not in schema.raw_schema.get("paths", {}):
        pytest.skip(f"{route} publishes no OpenAPI schema yet")
    operation = schema[route]["POST"]
    outcomes: Counter = Counter()

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES[mode], deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case):
        response = case.call()
        outcomes[check(response, bool(isinstance(case.body, dict) and case.body.get("stream")))] += 1

    run()
    print(f"\nfuzz {mode.value}: {sum(outcomes.values())} cases, outcomes {dict(outcomes)}")
    assert sum(outcomes.values()) >= EXAMPLES[mode] * 0.8
    if mode is GenerationMode.POSITIVE:
        assert outcomes["200"] + outcomes["200 stream"] > 0  # valid bodies do get answered
    else:
        assert any(k.startswith("4") for k in outcomes)  # and broken ones are refused


# ---- hostile JSON (issue 14, defect 2): nesting past what rein can re-serialise ------------------
# orjson parses 1,024 levels and serialises 255; Python's json stops near 1,000 with RecursionError.
# Every case is refused at parse time with a 400 that names the field, under every policy.

def _nest(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"a": node}
    return node


_HI = [{"role": "user", "content": "hi"}]
DEEP = {
    "response_format": ({"messages": _HI, "response_format": {"type": "json_schema", "json_schema": _nest(300)}},
                        "response_format"),
    "tool parameters": ({"messages": _HI, "tools": [{"type": "function", "function": {
        "name": "f", "parameters": {"type": "object", "properties": {"x": _nest(300)}}}}]}, "tools.0.function.parameters"),
    "unknown field": ({"messages": _HI, "vendor_extension": [[[_nest(600)]]]}, "vendor_extension"),
    "rein_profile of 1,500 [": ({"messages": _HI, "user": "alice", "metadata": {"rein_profile": "[" * 1500}},
                                "metadata.rein_profile"),
    "rein_profile nested": ({"messages": _HI, "user": "alice", "metadata": {"rein_profile": json.dumps(_nest(200))}},
                            "metadata.rein_profile"),
}


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("policy", ["passthrough", "structural", "default"])
@pytest.mark.parametrize("case", list(DEEP))
async def test_deep_json_is_a_400_naming_the_field(case, policy, stream, tmp_path):
    from middleware.models import OpenAICompatModel
    from refiners.store import open_store
    from tests.fake_upstream import FakeUpstream, asgi_client

    body, field = DEEP[case]
    async with FakeUpstream() as up:
        agent = OpenAICompatModel(up.base_url, timeout=5)
        app = create_app(Settings(policy=policy), Engine(agent, policy, personas=open_store(str(tmp_path / "p.db"))))
        async with asgi_client(app) as c:
            # json.dumps: orjson itself refuses to write these bodies
            r = await c.post("/v1/chat/completions", content=json.dumps({**body, "model": "m", "stream": stream}),
                             headers={"content-type": "application/json"})
        await agent.pool.close()
    assert r.status_code == 400, r.text[:300]
    error = r.json()["error"]
    assert error["code"] == "json_too_deep" and error["param"].startswith(field.split(".")[0]), error
    assert field.split(".")[0] in error["message"] and "64 levels" in error["message"]
    assert not up.requests  # refused before anything went upstream


def test_a_body_nested_past_the_parsers_own_limit_is_a_400_too():
    from middleware.proxy.errors import ProxyError
    from middleware.proxy.routes.validate import parse_body

    with pytest.raises(ProxyError) as e:
        parse_body(b'{"messages": [{"role": "user", "content": "hi"}], "x": ' + b"[" * 1100 + b"]" * 1100 + b"}")
    assert e.value.status == 400 and e.value.code == "json_too_deep"


def test_no_recursion_error_from_a_profile_string_in_any_shape():
    from refiners.profile import parse_profile, profile_from_metadata

    for raw in ("[" * 1500, "[" * 1500 + "]" * 1500, json.dumps(_nest(900)), "{" * 5000):
        got = profile_from_metadata({"metadata": {"rein_profile": raw}})
        assert parse_profile(got) is None  # ignored as invalid, never raised
    deep_list: list = []
    for _ in range(3000):  # a Python object past the interpreter's recursion limit (an SDK caller's)
        deep_list = [deep_list]
    assert parse_profile(profile_from_metadata({"metadata": {"rein_profile": deep_list}})) is None


async def test_sdk_callers_deep_json_is_a_model_error_not_a_crash():
    from middleware.models import OpenAICompatModel
    from policies.messages import parse_messages
    from policies.chat_model import ModelError, ModelRequest

    model = OpenAICompatModel("http://upstream.invalid/v1")
    request = ModelRequest(messages=parse_messages(_HI), response_format=_nest(300))
    with pytest.raises(ModelError) as e:
        await model.complete(request)
    assert e.value.status == 400


# ---- every route, hostile shapes (issue 20): hypothesis bodies per wire format --------------------
# Each case is a body of that route's shape with any field swapped for any JSON value, or a hostile
# one: nested up to 5,000 levels, or a list of up to a million items where the route reads content.
# Whatever arrives: never a 5xx, an error in the route's own shape with no Python or address in it,
# and no request over 200 ms of CPU. REIN_FUZZ_CASES=2000 for the long run (the default keeps
# `make test` short).
import gc  # noqa: E402
import re  # noqa: E402
import time  # noqa: E402

from hypothesis import strategies as st  # noqa: E402

CASES = int(os.environ.get("REIN_FUZZ_CASES", "120"))
CPU_LIMIT_S = 0.2
INTERNALS = re.compile(r"[A-Z][A-Za-z]*(Error|Exception)\b|unhashable|got multiple values|object has no attribute|"
                       r"not subscriptable|(?<![\w.])\d{1,3}(\.\d{1,3}){3}(?!\d|\.\d)|localhost:\d+|Traceback")

scalars = st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False) \
    | st.text(max_size=12)
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                        | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)


def either(valid):
    """Mostly the field as the protocol means it, sometimes (1 in 12) any JSON value at all."""
    return st.sampled_from(range(12)).flatmap(lambda k: anything if k == 7 else valid)


ids = either(st.sampled_from(["call_1", "tu_1", "c2", ""]))
text = either(st.text(max_size=40))
chat_part = either(st.fixed_dictionaries({"type": st.sampled_from(["text", "image_url", "x"]), "text": text}))
chat_call = either(st.fixed_dictionaries({"id": ids, "type": st.just("function"), "function": either(
    st.fixed_dictionaries({"name": either(st.sampled_from(["lookup", "cancel"])), "arguments": text}))}))
chat_message = either(st.fixed_dictionaries(
    {"role": either(st.sampled_from(["system", "user", "assistant", "tool", "developer"]))},
    optional={"content": either(text | st.lists(chat_part, max_size=3)), "tool_calls": either(st.lists(chat_call, max_size=2)),
              "tool_call_id": ids, "name": text}))
tool_fn = either(st.fixed_dictionaries({"type": st.just("function"), "function": either(st.fixed_dictionaries(
    {"name": either(st.sampled_from(["lookup", "cancel"])), "parameters": either(st.just({"type": "object"}))}))}))
CHAT = st.fixed_dictionaries({"messages": either(st.lists(chat_message, min_size=1, max_size=5))}, optional={
    "model": text, "tools": either(st.lists(tool_fn, max_size=2)), "tool_choice": anything,
    "response_format": anything, "user": text, "metadata": anything, "stream_options": anything})

resp_part = either(st.fixed_dictionaries({"type": st.sampled_from(["input_text", "output_text", "input_image", "refusal"]),
                                          "text": text}))
resp_item = either(st.one_of(
    st.fixed_dictionaries({"type": st.just("message"), "role": either(st.sampled_from(["user", "assistant", "system"])),
                           "content": either(text | st.lists(resp_part, max_size=3))}),
    st.fixed_dictionaries({"type": st.just("function_call"), "call_id": ids, "name": text, "arguments": text},
                          optional={"function": anything, "id": text}),
    st.fixed_dictionaries({"type": st.just("function_call_output"), "call_id": ids, "output": either(text)},
                          optional={"tool_call_id": anything})))
RESPONSES = st.fixed_dictionaries({"input": either(text | st.lists(resp_item, min_size=1, max_size=5))}, optional={
    "model": text, "instructions": text, "tools": either(st.lists(either(st.fixed_dictionaries(
        {"type": st.just("function"), "name": text, "parameters": anything})), max_size=2)),
    "tool_choice": either(st.sampled_from(["auto", "none", "required"]) | st.fixed_dictionaries(
        {"type": st.sampled_from(["function", "allowed_tools"]), "name": text, "tools": anything})),
    "text": either(st.fixed_dictionaries({"format": either(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema"]), "schema": anything}))})),
    "previous_response_id": anything, "store": anything, "metadata": anything, "reasoning": anything,
    "max_output_tokens": anything})

block = either(st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": text}),
    st.fixed_dictionaries({"type": st.just("tool_use"), "id": ids, "name": text, "input": anything},
                          optional={"function": anything}),
    st.fixed_dictionaries({"type": st.just("tool_result"), "tool_use_id": ids, "content": either(text)},
                          optional={"is_error": anything, "tool_call_id": anything}),
    st.fixed_dictionaries({"type": st.just("image"), "source": anything})))
anthropic_message = either(st.fixed_dictionaries(
    {"role": either(st.sampled_from(["user", "assistant"])), "content": either(text | st.lists(block, max_size=3))},
    optional={"tool_calls": anything}))
MESSAGES = st.fixed_dictionaries({"messages": either(st.lists(anthropic_message, min_size=1, max_size=5)),
                                  "max_tokens": either(st.integers(1, 64))}, optional={
    "model": text, "system": either(text | st.lists(block, max_size=2)), "metadata": anything,
    "tools": either(st.lists(either(st.fixed_dictionaries({"name": text, "input_schema": anything})), max_size=2)),
    "tool_choice": anything, "stop_sequences": anything})

BODIES = {"/v1/chat/completions": (CHAT, "messages", "content"), "/v1/responses": (RESPONSES, "input", "content"),
          "/v1/messages": (MESSAGES, "messages", "content")}
HOSTILE_ITEMS = {"int": b"7", "object": b'{"type":"text","text":"x"}', "string": b'"x"', "list": b"[]"}


@st.composite
def route_body(draw, route: str) -> tuple[bytes, bool]:
    """(raw body, stream?) for ``route``: a drawn body, sometimes with a hostile part spliced in."""
    strategy, list_key, content_key = BODIES[route]
    body = draw(strategy)
    stream = draw(st.booleans())
    body["stream"] = stream
    kind = draw(st.sampled_from(["plain"] * 6 + ["deep", "wide"]))
    if kind == "plain":
        return orjson.dumps(body), stream
    marker = "@@HOSTILE@@"
    if kind == "deep":
        depth = draw(st.integers(60, 5000))
        opener, closer = draw(st.sampled_from([(b'{"a":', b"}"), (b"[", b"]")]))
        hostile = opener * depth + b"1" + closer * depth
        where = draw(st.sampled_from(["field", "content", "role"]))
    else:
        size = draw(st.sampled_from([1001, 20_001, 250_000, 1_000_000]))
        item = HOSTILE_ITEMS[draw(st.sampled_from(list(HOSTILE_ITEMS)))]
        hostile = b"[" + b",".join([item] * size) + b"]"
        where = draw(st.sampled_from(["content", "content", "field"]))
    if where == "field":
        body["vendor_field"] = marker
    else:
        body[list_key] = [{"role": "user", content_key: "x"}]
        body[list_key][0][where if where == "role" else content_key] = marker
    return orjson.dumps(body).replace(b'"' + marker.encode() + b'"', hostile), stream


def fuzz_app():
    from middleware.models import ScriptedModel

    return create_app(Settings(policy="structural", allow_policy_header=True),
                      Engine(ScriptedModel(["All good."], cycle=True), "structural", rein_model=ScriptedModel([])))


def check_route(route: str, response, cpu: float) -> str:
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:300]}"
    assert cpu < CPU_LIMIT_S, f"{cpu * 1000:.0f} ms of CPU, answered {status}"
    visible = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items() if k.startswith("x-rein"))
    assert not INTERNALS.search(visible), INTERNALS.search(visible).group(0) + " in " + visible[:300]
    if status >= 400:
        body = response.json()
        if route == "/v1/messages":
            assert body["type"] == "error" and body["error"]["message"], body
        else:
            assert set(body) == {"error"} and body["error"]["message"] and body["error"]["code"], body
        return str(status)
    if response.headers["content-type"].startswith("text/event-stream"):
        assert "data: " in response.text
        assert '"internal_error"' not in response.text, response.text[-300:]
        return "200 stream"
    return "200"


@pytest.mark.parametrize("route", list(BODIES))
def test_fuzz_every_route_no_5xx_no_internals_bounded_cpu(route):
    from starlette.testclient import TestClient

    outcomes: Counter = Counter()
    worst = [0.0]
    with TestClient(fuzz_app(), raise_server_exceptions=False) as client:
        warm = {"/v1/chat/completions": {"messages": [{"role": "user", "content": "hi"}]},
                "/v1/responses": {"input": "hi"}, "/v1/messages": {"messages": [{"role": "user", "content": "hi"}],
                                                                      "max_tokens": 8}}[route]
        for policy in ("structural", "default"):  # imports and first-call costs, plain and streamed
            for stream in (False, True):
                assert client.post(route, json={**warm, "stream": stream}, headers={"x-rein-policy": policy}).status_code == 200
        # As `rein serve` does at start-up: the session's own heap out of the collector's full passes,
        # which otherwise land on whichever request is running (150 ms on a 116-byte body).
        gc.collect()
        gc.freeze()

        @given(case=route_body(route), policy=st.sampled_from(["structural", "default"]))
        @settings(max_examples=CASES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        def run(case, policy):
            raw, _ = case
            headers = {"content-type": "application/json", "x-rein-policy": policy}
            start = time.process_time()
            r = client.post(route, content=raw, headers=headers)
            cpu = time.process_time() - start
            for _ in range(2):  # over the limit: the request's own cost, or a one-off on this shared machine?
                if cpu < CPU_LIMIT_S:
                    break
                start = time.process_time()
                client.post(route, content=raw, headers=headers)
                cpu = min(cpu, time.process_time() - start)
            worst[0] = max(worst[0], cpu)
            outcomes[check_route(route, r, cpu)] += 1

        try:
            run()
        finally:
            gc.unfreeze()
    print(f"\nfuzz {route}: {sum(outcomes.values())} cases, outcomes {dict(outcomes)}, worst CPU {worst[0] * 1000:.0f} ms")
    assert sum(outcomes.values()) >= CASES * 0.9
    assert outcomes["200"] + outcomes["200 stream"] > 0 and any(k.startswith("4") for k in outcomes)
