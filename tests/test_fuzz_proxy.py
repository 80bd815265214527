"""Fuzz POST /v1/chat/completions from the proxy's own OpenAPI schema with schemathesis:
valid bodies (positive) and bodies that break the schema (negative). Whatever arrives: never a
5xx, never a crash, every error in OpenAI's shape, every stream closed by [DONE] or an error
event. Bounded (a fixed number of examples, no deadline flakiness) to keep the suite fast."""
from __future__ import annotations

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


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda m: m.value)
def test_fuzz_chat_completions(mode):
    schema = schemathesis.openapi.from_asgi("/openapi.json", build_app())
    operation = schema["/v1/chat/completions"]["POST"]
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
