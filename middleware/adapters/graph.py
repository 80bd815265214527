"""A compiled LangGraph graph with a messages state, with rein's stages around each run.

The graph is the pipeline's agent: rein diagnoses the input dialogue, the graph runs on it
(with a recovery plan injected when there is one), and rein refines the graph's last reply.
Input and output keep the graph's shape; the output dict also has ``.rein``.

The graph is assumed to append its new messages after the input ones (``add_messages``). With
a checkpointer and a ``thread_id``, rein diagnoses the thread's history plus the new input.

A tool call the graph ends its run with (for its caller to run) is checked like any draft: held,
re-asked, dropped. A call the graph's own tool node ran inside the run cannot be held; one that
broke an action rule is reported (``report.flagged_calls``). To hold those, put rein inside the
agent: ``create_agent(..., middleware=[rein.middleware()])`` checks each call before its tool runs.

Example::

    guarded = rein.wrap_graph(builder.compile())
    out = await guarded.ainvoke({"messages": [{"role": "user", "content": "hi"}]})
    out["messages"][-1].content, out.rein.diagnosis
"""
from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, AsyncIterator

from langchain_core.messages import AIMessage, BaseMessage, convert_to_messages

from middleware.action_hold import replayed, rules
from middleware.adapters.clock import now_headers
from middleware.adapters.isolation import CallerContext, run_turn
from middleware.adapters.lc_messages import from_langchain, message_from_langchain, reply_response, to_langchain
from middleware.adapters.report import ReinReport, attach
from middleware.adapters.sync import run_sync
from middleware.models.chunks import response_chunks
from policies.messages import AssistantMessage
from policies.chat_model import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from middleware.engine import Engine


class _Run:
    def __init__(self, state: dict[str, Any], config: Any, kwargs: dict[str, Any], caller: CallerContext):
        self.state, self.config, self.kwargs, self.caller = state, config, kwargs, caller
        self.output: dict[str, Any] | None = None
        self.prior = 0  # messages already in the graph's checkpointed thread
        self.sent = 0   # prior + messages the graph was given on its last run


_current: ContextVar[_Run | None] = ContextVar("rein_graph_run", default=None)


class GuardedGraphModel:
    """The ChatModel inside a GuardedGraph: messages in, the graph's last message out, within the
    caller's run (its checkpointed thread, config). ``sim_tests.agents.GraphModel`` is the plain one."""

    def __init__(self, graph: Any, key: str = "messages"):
        self.graph = graph
        self.key = key
        self.name = getattr(graph, "name", None) or "graph"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        run = _current.get() or _Run({}, None, {}, CallerContext())
        messages = to_langchain(request.messages)[run.prior:]  # a checkpointed thread has the rest
        output = await run.caller.run(self.graph.ainvoke, {**run.state, self.key: messages},
                                      run.config, **run.kwargs)
        run.output, run.sent = output, run.prior + len(messages)
        new = list(output.get(self.key) or [])[run.sent:]
        return _last_reply(new, self.name)

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        for c in response_chunks(await self.complete(request)):
            yield c


class GuardedGraph:
    """``ainvoke``/``invoke`` like the graph's; anything else is the graph's own attribute."""

    def __init__(self, engine: "Engine", graph: Any, policy: Any = None, key: str = "messages"):
        """``engine``: a ``Rein``'s (``rein.wrap_graph(graph)`` passes it)."""
        self.graph = graph
        self.key = key
        self.pipeline = engine.pipeline(policy, agent=GuardedGraphModel(graph, key))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.graph, name)

    async def ainvoke(self, input: dict[str, Any], config: Any = None, **kwargs: Any) -> dict[str, Any]:
        return await self._turn(CallerContext(), input, config, kwargs)

    def invoke(self, input: dict[str, Any], config: Any = None, **kwargs: Any) -> dict[str, Any]:
        return run_sync(self._turn(CallerContext(), input, config, kwargs))

    async def _turn(self, caller: CallerContext, input: dict[str, Any], config: Any,
                    kwargs: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(input, dict) or self.key not in input:
            raise TypeError(f"wrap_graph needs a state dict with a {self.key!r} list")
        given = [m if m.id else m.model_copy(update={"id": str(uuid.uuid4())})
                 for m in convert_to_messages(input[self.key])]
        run = _Run({k: v for k, v in input.items() if k != self.key}, config, kwargs, caller)
        prior = await self._history(config)
        run.prior = len(prior)
        token = _current.set(run)
        try:
            now = ((config or {}).get("configurable") or {}).get("rein_now") if isinstance(config, dict) else None
            state = await run_turn(self.pipeline, ModelRequest(messages=from_langchain([*prior, *given]),
                                                               headers=now_headers(self.pipeline, now)))
        finally:
            _current.reset(token)
        report = ReinReport.from_state(self.pipeline.policy.name, state)
        output = dict(run.output or {})
        produced = list(output.get(self.key) or [])
        new = produced[run.sent:]
        report = _with_inner_findings(report, self.pipeline.inception, produced, run.sent)
        # What the caller sees never includes rein's injected messages: their dialogue + the new ones.
        # (A checkpointed thread keeps them, as the agent's own past reasoning.)
        messages = produced if not report.injected else [*produced[:run.prior], *given, *new]
        output[self.key] = _with_report(_with_final(messages, len(messages) - len(new), state["final"].message),
                                        report)
        return attach(output, report)


    async def _history(self, config: Any) -> list[Any]:
        """The thread's messages so far, when the graph keeps them in a checkpointer."""
        thread = ((config or {}).get("configurable") or {}).get("thread_id")
        if thread is None or not getattr(self.graph, "checkpointer", None):
            return []
        snapshot = await self.graph.aget_state(config)
        return list((snapshot.values or {}).get(self.key) or [])


def _with_inner_findings(report: ReinReport, inception: Any, produced: list[Any], sent: int) -> ReinReport:
    """Calls the graph made and ran inside its own run (its tool node) cannot be held: rein sees
    them after the run. Those that broke an action rule are reported (flagged) with a note."""
    inner = from_langchain(produced[:-1]) if len(produced) - 1 > sent else []
    names = list(dict.fromkeys(c.function.name for m in inner[sent:] if m.role == "assistant" for c in m.tool_calls or []))
    tools = [{"type": "function", "function": {"name": n}} for n in names]
    if not names or not inception.checks_calls(tools):
        return report
    found = [d for _, d in replayed(inception, inner, tools, start=sent)]
    if not found:
        return report
    notes = [f"graph: a call inside the graph's run broke {rules(found)}: reported, not held (its tool node ran it)"]
    return report.model_copy(update={"flagged_calls": [*report.flagged_calls, *found], "notes": [*report.notes, *notes]})


def _last_reply(new: list[Any], name: str) -> ModelResponse:
    """The graph's last reply among its new messages (none: an empty draft, nothing to refine)."""
    for m in reversed(new):
        if isinstance(m, dict) and m.get("role") == "assistant":
            return ModelResponse(message=message_from_langchain(m), model=name)
        if isinstance(m, AIMessage):
            return reply_response(m, name)
    return reply_response(None, name)


def _with_report(messages: list[Any], report: ReinReport) -> list[Any]:
    """The last reply carries the report as create_agent's middleware puts it, so
    ``report_of(out["messages"][-1])`` reads it after either wrapper."""
    if not messages or not isinstance(messages[-1], AIMessage):
        return messages
    last = messages[-1]
    metadata = {**last.response_metadata, "rein": report.model_dump(mode="json", exclude_none=True)}
    revised = last.model_copy(update={"response_metadata": metadata})
    object.__setattr__(revised, "rein", report)
    return [*messages[:-1], revised]


def _with_final(messages: list[Any], first_new: int, final: AssistantMessage) -> list[Any]:
    """Swap the graph's last reply for rein's final one when rein changed it."""
    for i in range(len(messages) - 1, first_new - 1, -1):
        m = messages[i]
        if not (isinstance(m, AIMessage) or (isinstance(m, dict) and m.get("role") == "assistant")):
            continue
        if message_from_langchain(m).model_dump(exclude_unset=True) == final.model_dump(exclude_unset=True):
            return messages
        if isinstance(m, BaseMessage):
            revised = to_langchain([final])[0].model_copy(
                update={"id": m.id, "response_metadata": m.response_metadata,
                        "usage_metadata": getattr(m, "usage_metadata", None)})
        else:
            revised = final.model_dump(exclude_unset=True, mode="json")
        return [*messages[:i], revised, *messages[i + 1:]]
    return messages
