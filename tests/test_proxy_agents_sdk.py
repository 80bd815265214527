"""The OpenAI Agents SDK's default model (Responses) runs an Agent with a function tool through rein."""
from __future__ import annotations

import json

import pytest
from fake_upstream import openai_client
from protocol_doubles import app_for

from middleware.models import ScriptedModel, tool_call

agents = pytest.importorskip("agents")
from agents import Agent, RunConfig, Runner, function_tool  # noqa: E402
from agents.models.openai_provider import OpenAIProvider  # noqa: E402
from agents.models.openai_responses import OpenAIResponsesModel  # noqa: E402

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"12C and rain in {city}"


def run_config(client) -> RunConfig:
    # use_responses=True is the SDK's default; said here so the test fails if that default moves.
    return RunConfig(model_provider=OpenAIProvider(openai_client=client, use_responses=True), tracing_disabled=True)


@pytest.mark.parametrize("streamed", [False, True])
@pytest.mark.parametrize("policy", ["passthrough", "structural", "default"])
async def test_an_agent_with_a_function_tool_runs_through_rein(policy, streamed):
    CALLS.clear()
    agent_model = ScriptedModel([tool_call("get_weather", {"city": "Oslo"}, id="call_w1"), "It rains in Oslo: 12C."])
    agent = Agent(name="weather", instructions="Answer about the weather.", tools=[get_weather], model="gpt-test")
    async with openai_client(app_for(agent_model, policy)) as client:
        config = run_config(client)
        assert isinstance(config.model_provider.get_model("gpt-test"), OpenAIResponsesModel)
        if streamed:
            result = Runner.run_streamed(agent, "What is the weather in Oslo?", run_config=config)
            kinds = [e.type async for e in result.stream_events()]
            assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
        else:
            result = await Runner.run(agent, "What is the weather in Oslo?", run_config=config)
    assert result.final_output == "It rains in Oslo: 12C."
    assert CALLS == ["Oslo"]
    first, second = agent_model.requests
    assert first.messages[0].content == "Answer about the weather."
    assert [t["function"]["name"] for t in first.tools if t["function"]["name"] == "get_weather"] == ["get_weather"]
    call = second.messages[-2].tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_w1", "get_weather", {"city": "Oslo"})
    assert second.messages[-1].tool_call_id == "call_w1" and second.messages[-1].content == "12C and rain in Oslo"
