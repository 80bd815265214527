"""rein as a LangChain v1 ``AgentMiddleware``: the pipeline around each model call of an agent.

Before a call, rein diagnoses the dialogue and, on a plan, injects it (and offers its
recovery tools); after, it refines a final (non-tool-call) reply. Calls the agent makes to
rein's own tools (``think`` and the policy's recovery tools) are resolved inside rein; they
are offered to the model only when a plan names them, and also registered through ``tools``
so the agent's tool node can answer one if it ever gets there. A tool-call draft an action check
holds never reaches the tool node (re-asked, then dropped, like every surface); a call changed
after the model call is checked again just before its tool runs (``wrap_tool_call``).

Example::

    agent = create_agent(llm, tools=[lookup], middleware=[Rein(policy="default").middleware()])
    out = agent.invoke({"messages": [{"role": "user", "content": "hi"}]})
    report_of(out["messages"][-1]).diagnosis
"""
from __future__ import annotations

import json
import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from langchain.agents.middleware import AgentMiddleware, ModelRequest as LCRequest, ModelResponse as LCResponse
from langchain.agents.middleware.types import ExtendedModelResponse, ToolCallRequest
from langchain.agents.structured_output import AutoStrategy, ToolStrategy
from langchain_core.messages import AIMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from inception.tools import think_spec, tool_spec
from middleware.action_hold import held_alone, refusal
from middleware.adapters.clock import now_headers
from middleware.adapters.isolation import CallerContext, run_turn
from middleware.adapters.lc_messages import (from_langchain, message_from_langchain, message_to_langchain,
                                             reply_response)
from middleware.adapters.report import ReinReport
from middleware.adapters.sync import run_sync
from middleware.models.chunks import response_chunks
from policies.messages import AssistantMessage, FunctionCall, ToolCall
from policies.chat_model import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from middleware.engine import Engine


class _Call:
    """One model call of the agent: its request, handler, and what rein made of it."""

    def __init__(self, request: LCRequest, handler: Callable, caller: CallerContext, rein_tools: set[str]):
        self.request, self.handler, self.caller = request, handler, caller
        lc = ([request.system_message] if request.system_message else []) + list(request.messages)
        self.client_tools = [t for t in request.tools if _tool_name(t) not in rein_tools]
        self.messages = from_langchain(lc)
        self.original = {id(ours): theirs for ours, theirs in zip(self.messages, lc)}
        self.responses: list[Any] = []


_current: ContextVar[_Call | None] = ContextVar("rein_model_call", default=None)


class HandlerAgent:
    """The ChatModel over the agent's own model call (the ``handler`` of ``wrap_model_call``)."""

    name = "agent"

    def __init__(self, tools_by_name: dict[str, BaseTool]):
        self.rein_tools = tools_by_name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        call = _current.get()
        if call is None:
            raise RuntimeError("HandlerAgent runs only inside ReinMiddleware.wrap_model_call")
        lc = [call.original.get(id(m)) or message_to_langchain(m) for m in request.messages]
        system = lc.pop(0) if lc and isinstance(lc[0], SystemMessage) else None
        known = {_tool_name(t): t for t in [*call.request.tools, *self.rein_tools.values()]}
        # Back to the agent's own tool objects; structured-output tools are the agent's to add.
        tools = [known[t["function"]["name"]] if "function" in t else t for t in request.tools or []
                 if "function" not in t or t["function"]["name"] in known]
        updated = call.request.override(messages=lc, system_message=system, tools=tools or call.client_tools)
        result = await call.caller.run(call.handler, updated)
        call.responses.append(result)
        reply = _last_ai(result)
        return reply_response(reply)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        for c in response_chunks(await self.complete(request)):
            yield c


class ReinMiddleware(AgentMiddleware):
    """rein's pipeline around each model call of a ``create_agent`` agent."""

    def __init__(self, engine: "Engine | None" = None, policy: Any = None):
        """``engine``: a ``Rein``'s (``rein.middleware()`` passes it); None builds one for ``policy``
        with no model of rein's own (rules only)."""
        super().__init__()
        self.tools = []
        self._agent = HandlerAgent({})
        if engine is None:  # ReinMiddleware(policy="structural") without building a Rein first
            from middleware.engine import Engine

            engine = Engine(agent=self._agent, policy=policy or "default")
        self.pipeline = engine.pipeline(policy, agent=self._agent)
        policy = self.pipeline.policy
        self.tools = [_rein_tool(think_spec(policy.inception.think_tool), False, self.pipeline)]
        self.tools += [_rein_tool(tool_spec(t), t.on_call == "end_turn", self.pipeline) for t in policy.recovery_tools]
        self._agent.rein_tools = {t.name: t for t in self.tools}

    async def awrap_model_call(self, request: LCRequest, handler: Callable) -> Any:
        return await self._turn(request, handler, CallerContext())

    async def awrap_tool_call(self, request: ToolCallRequest, handler: Callable) -> Any:
        refused = self._refused(request)
        return refused if refused is not None else await handler(request)

    def wrap_tool_call(self, request: ToolCallRequest, handler: Callable) -> Any:
        refused = self._refused(request)
        return refused if refused is not None else handler(request)

    def _refused(self, request: ToolCallRequest) -> ToolMessage | None:
        """The last check before a tool runs. A call rein held was already re-asked or dropped in
        wrap_model_call; this catches one changed after the model call (a human in the loop, another
        middleware's after_model): it is not run, and the agent reads why."""
        call = request.tool_call
        messages = request.state.get("messages") if isinstance(request.state, dict) else None
        if call["name"] in self._agent.rein_tools or not messages:
            return None
        tools = [_openai_tool(request.tool)] if request.tool is not None else None
        at = next((i for i in range(len(messages) - 1, -1, -1) if isinstance(messages[i], AIMessage)
                   and any(c.get("id") == call["id"] for c in messages[i].tool_calls)), len(messages))
        drafted = ToolCall(id=call["id"] or "", function=FunctionCall(name=call["name"], arguments=json.dumps(call["args"])))
        held = held_alone(self.pipeline.inception, from_langchain(list(messages[:at])), tools, drafted)
        if not held:
            return None
        return ToolMessage(content=refusal(call["name"], held), tool_call_id=call["id"], name=call["name"],
                           status="error")

    def wrap_model_call(self, request: LCRequest, handler: Callable) -> Any:
        return run_sync(self._turn(request, handler, CallerContext()))

    async def _turn(self, request: LCRequest, handler: Callable, caller: CallerContext) -> Any:
        call = _Call(request, handler, caller, set(self._agent.rein_tools))
        # Structured-output tools are real tools to the model: a call to one is not "unknown".
        tools = [*map(_openai_tool, call.client_tools), *_output_tools(request.response_format)] or None
        token = _current.set(call)
        try:
            context = getattr(getattr(request, "runtime", None), "context", None)  # invoke(..., context={"rein_now": ..})
            now = context.get("rein_now") if isinstance(context, dict) else None
            state = await run_turn(self.pipeline, ModelRequest(messages=call.messages, tools=tools,
                                                               headers=now_headers(self.pipeline, now)))
        finally:
            _current.reset(token)
        report = ReinReport.from_state(self.pipeline.policy.name, state)
        return _with_final(call.responses[-1], state["final"].message, report)


def _with_final(result: Any, final: AssistantMessage, report: ReinReport) -> Any:
    """The handler's last result with rein's final reply and report on its AIMessage."""
    if isinstance(result, ExtendedModelResponse):
        return ExtendedModelResponse(model_response=_with_final(result.model_response, final, report),
                                     command=result.command)
    messages = [result] if isinstance(result, AIMessage) else list(result.result)
    for i in range(len(messages) - 1, -1, -1):
        if isinstance(messages[i], AIMessage):
            messages[i] = _revised(messages[i], final, report)
            break
    if isinstance(result, AIMessage):
        return messages[0]
    return LCResponse(result=messages, structured_response=result.structured_response)


def _revised(reply: AIMessage, final: AssistantMessage, report: ReinReport) -> AIMessage:
    metadata = {**reply.response_metadata, "rein": report.model_dump(mode="json", exclude_none=True)}
    if message_from_langchain(reply).model_dump(exclude_unset=True) == final.model_dump(exclude_unset=True):
        revised = reply.model_copy(update={"response_metadata": metadata})
    else:
        revised = message_to_langchain(final).model_copy(
            update={"id": reply.id, "response_metadata": metadata, "usage_metadata": reply.usage_metadata})
    object.__setattr__(revised, "rein", report)
    return revised


def _last_ai(result: Any) -> AIMessage | None:
    if isinstance(result, ExtendedModelResponse):
        result = result.model_response
    if isinstance(result, AIMessage):
        return result
    return next((m for m in reversed(result.result) if isinstance(m, AIMessage)), None)


def _output_tools(response_format: Any) -> list[dict[str, Any]]:
    """The tools create_agent binds for a structured ``response_format`` (ToolStrategy/AutoStrategy)."""
    if isinstance(response_format, AutoStrategy):
        response_format = ToolStrategy(response_format.schema)
    if not isinstance(response_format, ToolStrategy):
        return []
    return [{"type": "function", "function": {"name": s.name, "description": s.description or s.name,
                                              "parameters": s.json_schema}} for s in response_format.schema_specs]


def _openai_tool(tool: Any) -> dict[str, Any]:
    try:
        return convert_to_openai_tool(tool)
    except Exception:  # a provider's built-in tool dict: shown to diagnosis as it is
        if isinstance(tool, dict):
            return tool
        raise


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, BaseTool):
        return tool.name
    if isinstance(tool, dict):
        return (tool.get("function") or {}).get("name") or tool.get("name")
    return getattr(tool, "__name__", None)


def _rein_tool(spec: dict[str, Any], end_turn: bool, pipeline: Any) -> BaseTool:
    """A rein-owned tool (``think`` or a policy's recovery tool) as a LangChain tool that
    rein's inception stage answers, for the rare call that reaches the agent's tool node."""
    fn = spec["function"]

    async def resolve(**arguments: Any) -> str:
        call = ToolCall(id=f"call_rein_{uuid.uuid4().hex[:12]}",
                        function=FunctionCall(name=fn["name"], arguments=json.dumps(arguments)))
        resolution = await pipeline.inception.resolve(call)
        if resolution.incident is not None:  # the reply tells the user it was reported: report it
            pipeline.incidents.report(resolution.incident, pipeline.policy.name)
        return resolution.reply if resolution.end_turn else resolution.tool_result

    return StructuredTool.from_function(coroutine=resolve, func=lambda **kw: run_sync(resolve(**kw)),
                                        name=fn["name"], description=fn.get("description") or fn["name"],
                                        args_schema=fn.get("parameters") or {"type": "object", "properties": {}},
                                        return_direct=end_turn)


__all__ = ["HandlerAgent", "ReinMiddleware"]
