"""LangChainChatModel: LangChain's create_agent runs on any rein ChatModel."""
from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from middleware.adapters.lc_model import LangChainChatModel
from middleware.models.testing import ScriptedModel, tool_call

calls: list[tuple[int, int]] = []


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    calls.append((a, b))
    return a + b


def _agent(model: ScriptedModel):
    return create_agent(LangChainChatModel(chat_model=model), tools=[add])


def test_sync_agent_loop_runs_a_real_tool():
    calls.clear()
    model = ScriptedModel([tool_call("add", {"a": 2, "b": 3}, id="c1"), "It is 5."])
    out = _agent(model).invoke({"messages": [{"role": "user", "content": "2+3?"}]})
    assert calls == [(2, 3)]
    assert [type(m) for m in out["messages"]] == [HumanMessage, AIMessage, ToolMessage, AIMessage]
    assert out["messages"][-1].content == "It is 5."
    second = model.requests[1]
    assert second.tools[0]["function"]["name"] == "add"
    assert [m.role for m in second.messages] == ["user", "assistant", "tool"]
    assert second.messages[2].tool_call_id == "c1" and second.messages[2].content == "5"


async def test_async_agent_loop_and_usage():
    model = ScriptedModel([tool_call("add", {"a": 1, "b": 1}), "2"])
    out = await _agent(model).ainvoke({"messages": [{"role": "user", "content": "1+1"}]})
    assert out["messages"][-1].content == "2"
    assert out["messages"][-1].usage_metadata["total_tokens"] == 2


async def test_streaming_yields_text_and_tool_call_chunks():
    model = ScriptedModel([tool_call("add", {"a": 4, "b": 5}), "Nine it is."])
    text, tool_chunks = [], []
    async for piece, _meta in _agent(model).astream({"messages": [{"role": "user", "content": "4+5"}]},
                                                     stream_mode="messages"):
        if isinstance(piece, AIMessage):
            text.append(piece.content)
            tool_chunks += piece.tool_call_chunks
    assert "".join(text) == "Nine it is."
    assert [c["name"] for c in tool_chunks] == ["add"]


async def test_bind_tools_maps_langchain_tool_choice_to_openai():
    model = ScriptedModel(["ok", "ok"])
    llm = LangChainChatModel(chat_model=model)
    await llm.bind_tools([add], tool_choice="add").ainvoke("hi")
    await llm.bind_tools([add], tool_choice="any", temperature=0).ainvoke([HumanMessage("hi")], stop=["\n"])
    assert model.requests[0].tool_choice == {"type": "function", "function": {"name": "add"}}
    assert model.requests[1].tool_choice == "required"
    assert model.requests[1].extra == {"temperature": 0, "stop": ["\n"]}
