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
    from middleware.proxy.validate import parse_body

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
