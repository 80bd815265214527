"""Agents under test, each adapted to one shape: ``bind(env)`` gives a ChatModel for one trial.

Two kinds exist. A *model* agent (an OpenAI-compatible endpoint, a Python function, any
ChatModel) answers with text or tool calls, and the harness runs the tool calls against the
trial's environment. A *self-running* agent (a compiled LangGraph graph, the reference
LangChain agent) runs its own tool loop over the environment's tools and answers with text.
Either way every arm sees the same agent. rein goes where a user would put it: in front of the
agent's model. A model agent's model is the whole turn, so the arm wraps each turn; a self-running
agent takes ``bind(env, wrap=...)`` and puts the arm in front of the model inside its loop, so rein
sees each model call with the tool calls and results before it. Example::

    agent = load_agent("http://127.0.0.1:8000/v1")      # or "pkg.module:attr", "reference", "scripted"
    model = agent.bind(env)                            # a ChatModel for this trial
    model = ReferenceAgent(llm).bind(env, wrap=arm.wrap_model)  # the arm in front of its model
"""
from __future__ import annotations

import importlib
import inspect
import json
import re
from typing import Any, Callable, Protocol

from middleware.adapters.function_agent import FunctionAgent
from middleware.adapters.lc_messages import from_langchain, to_langchain
from middleware.models import FunctionModel, OpenAICompatModel, resolve_model, tool_call
from policies.messages import ToolMessage, assistant, text_of
from policies.chat_model import ChatModel, ModelRequest, ModelResponse
from sim_tests.domains import Environment


Wrap = Callable[[ChatModel], ChatModel]


class AgentUnderTest(Protocol):
    name: str

    def bind(self, env: Environment) -> ChatModel:
        """The model that plays the agent in one trial (``env`` holds that trial's database).

        An agent that runs its own tool loop also takes ``wrap``, and builds its loop on
        ``wrap(its model)`` (called while binding); the harness then wraps no whole turn."""
        ...


class ModelAgent:
    """Any ChatModel: an endpoint, a FunctionModel, a litellm model. The harness runs its tool calls."""

    def __init__(self, model: ChatModel, name: str | None = None):
        self.model = model
        self.name = name or getattr(model, "name", "model")

    def bind(self, env: Environment) -> ChatModel:
        return self.model


def endpoint_agent(base_url: str, model: str | None = None, api_key: str | None = None,
                   timeout: float = 60.0) -> ModelAgent:
    """An OpenAI-compatible ``/v1`` endpoint (a team's deployment, with or without rein in front)."""
    return ModelAgent(OpenAICompatModel(base_url, api_key=api_key, model=model, timeout=timeout), name=base_url)


def callable_agent(fn: Callable[..., Any], name: str | None = None) -> ModelAgent:
    """A sync or async function ``fn(messages, tools=None)`` over OpenAI-format dicts that returns
    text or an assistant message (tool calls in it are run by the harness)."""
    return ModelAgent(FunctionAgent(fn, name=name), name=name or getattr(fn, "__name__", "callable"))


def langchain_tools(env: Environment) -> list[Any]:
    """The domain's tools as LangChain tools whose calls land in ``env`` (and its fault injection)."""
    from langchain_core.tools import StructuredTool

    def make(tool_name: str, schema: dict[str, Any]) -> Any:
        def run(**kwargs: Any) -> str:
            return env.execute(tool_name, kwargs)
        return StructuredTool.from_function(func=run, name=tool_name, description=schema["description"] or tool_name,
                                            args_schema=schema["parameters"])
    return [make(s["function"]["name"], s["function"]) for s in env.domain.tool_schemas()]


class GraphModel:
    """A compiled LangGraph graph with a ``messages`` state, as a ChatModel for one trial."""

    def __init__(self, graph: Any, name: str = "graph"):
        self.graph = graph
        self.name = name

    async def complete(self, request: ModelRequest) -> ModelResponse:
        state = await self.graph.ainvoke({"messages": to_langchain(request.messages)})
        produced = from_langchain(state["messages"][len(request.messages):]) or [assistant("")]
        final = produced[-1]
        if final.role != "assistant":  # the graph stopped on a tool result: report it as text
            final = assistant(text_of(final))
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for m in state["messages"][len(request.messages):]:
            for key, theirs in (("prompt_tokens", "input_tokens"), ("completion_tokens", "output_tokens")):
                usage[key] += int((getattr(m, "usage_metadata", None) or {}).get(theirs, 0))
        return ModelResponse(message=final, model=self.name, usage=usage,
                             finish_reason="tool_calls" if final.tool_calls else "stop")

    async def stream(self, request: ModelRequest):
        from middleware.models.chunks import response_chunks
        for c in response_chunks(await self.complete(request)):
            yield c


class GraphAgent:
    """A LangGraph agent. Give a compiled graph (its tool calls, if it returns them unrun, are run
    by the harness) or a factory ``make(tools) -> compiled graph`` that gets the domain's tools as
    LangChain tools bound to each trial's database.

    A factory that also takes ``wrap`` lets rein in front of its model, as in a deployment::

        def make_graph(tools, wrap):
            return create_agent(LangChainChatModel(chat_model=wrap(my_model)), tools=tools)

    Without it rein can only wrap each whole run of the graph, and never sees its tool calls."""

    def __init__(self, graph_or_factory: Any, name: str = "graph"):
        self.target = graph_or_factory
        self.name = name
        self.is_factory = not hasattr(graph_or_factory, "ainvoke")
        self.takes_wrap = self.is_factory and accepts(graph_or_factory, "wrap")

    def bind(self, env: Environment, wrap: Wrap | None = None) -> ChatModel:
        if not self.is_factory:
            return GraphModel(self.target, self.name)
        tools = langchain_tools(env)
        graph = self.target(tools, wrap=wrap or _same) if self.takes_wrap else self.target(tools)
        return GraphModel(graph, self.name)


def _same(model: ChatModel) -> ChatModel:
    return model


def accepts(fn: Any, parameter: str) -> bool:
    """Whether ``fn`` takes a parameter of that name (``bind``/factories that take ``wrap``)."""
    try:
        return parameter in inspect.signature(fn).parameters
    except (TypeError, ValueError):  # a builtin or a C callable: no signature to read
        return False


class ReferenceAgent:
    """The project's reference agent: LangChain ``create_agent`` on any ChatModel, with the
    domain's tools and its written policy as the system prompt (the harness sends it)."""

    def __init__(self, model: ChatModel, max_tokens: int | None = None):
        self.model = model
        self.name = f"reference({getattr(model, 'name', 'model')})"
        self.max_tokens = max_tokens

    def bind(self, env: Environment, wrap: Wrap | None = None) -> ChatModel:
        from langchain.agents import create_agent

        from middleware.adapters.lc_model import LangChainChatModel

        model = CappedModel(self.model, self.max_tokens) if self.max_tokens else self.model
        if wrap is not None:
            model = wrap(model)
        return GraphModel(create_agent(LangChainChatModel(chat_model=model), tools=langchain_tools(env)), self.name)


class CappedModel:
    """Sets a default reply length (keeps runs on the small embedded model short)."""

    def __init__(self, model: ChatModel, max_tokens: int):
        self.model = model
        self.name = getattr(model, "name", "model")
        self.max_tokens = max_tokens

    def _capped(self, request: ModelRequest) -> ModelRequest:
        return request.model_copy(update={"extra": {"max_tokens": self.max_tokens, **request.extra}})

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.model.complete(self._capped(request))

    def stream(self, request: ModelRequest):
        return self.model.stream(self._capped(request))


class ScriptedAgent:
    """A deterministic rule agent (the domain's ``scripted_agent`` rules): a regex on the user's
    last words picks a tool call; a tool result is reported back; a failed call is retried when
    the user asks again. It does not ask clarifying questions — a baseline, and fast.

    ``asks=True`` (spec ``scripted:asks``) adds the one question a rule agent can ask: when the user
    wants something done (a change verb) and names nothing it can act on, it asks for the id once.
    That is what a user who withholds details waits for."""

    WANTS = r"\b(?:cancel|return|change|move|upgrade|send|put|modify|address)"

    def __init__(self, asks: bool = False):
        self.asks = asks
        self.name = "scripted:asks" if asks else "scripted"

    def bind(self, env: Environment) -> ChatModel:
        rules = [(re.compile(r.when, re.I), r) for r in env.domain.data.scripted_agent]
        kind = next(iter(env.domain.variants.owners), "account")

        def decide(request: ModelRequest) -> Any:
            last = _last_own(request.messages, env.domain.tools)
            if last.role == "tool":
                result = json.loads(text_of(last) or "null")
                if isinstance(result, dict) and "error" in result:
                    return f"Sorry, there was a problem: {result['error']}."
                return f"Done: {json.dumps(result)}"
            text = text_of(last)
            for pattern, rule in rules:
                m = pattern.search(text)
                if m:
                    args = {k: (m.group(int(v[1:])) if v.startswith("$") else v) for k, v in rule.args.items()}
                    return tool_call(rule.call, args)
            failed = _last_failed_call(request.messages)
            if failed is not None:
                return tool_call(failed.function.name, failed.function.arguments)
            if self.asks and re.search(self.WANTS, text, re.I) and not _asked(request.messages):
                return f"Could you give me the {kind} id, please?"
            return "Is there anything else I can help you with?"

        return FunctionModel(decide, name="scripted")


def _last_own(messages: list[Any], tools: dict[str, Any]) -> Any:
    """The last user message or result of a domain tool (skips what rein injected, e.g. a think trace)."""
    names = {c.id: c.function.name for m in messages for c in (getattr(m, "tool_calls", None) or [])}
    for m in reversed(messages):
        if m.role == "user" or (m.role == "tool" and names.get(m.tool_call_id) in tools):
            return m
    return messages[-1]


def _asked(messages: list[Any]) -> bool:
    return any(m.role == "assistant" and "id, please?" in (text_of(m) or "") for m in messages)


def _last_failed_call(messages: list[Any]) -> Any:
    """The most recent tool call whose result was an error (the user asked again: retry it)."""
    results = {m.tool_call_id: text_of(m) for m in messages if isinstance(m, ToolMessage)}
    for m in reversed(messages):
        for call in reversed(getattr(m, "tool_calls", None) or []):
            return call if '"error"' in results.get(call.id, "") else None
    return None


async def aclose(agent: AgentUnderTest) -> None:
    """Close what an agent holds open (an endpoint's connection pool)."""
    pool = getattr(getattr(agent, "model", None), "pool", None)
    if pool is not None and hasattr(pool, "close"):
        await pool.close()


def load_agent(spec: str | None, max_tokens: int | None = None) -> AgentUnderTest:
    """An agent from a command-line spec.

    ``None``/``reference`` → the reference agent on the embedded model; ``reference:MODEL`` → on
    that model (a litellm string or ``http(s)://.../v1``); ``http(s)://.../v1`` → that endpoint as
    the agent; ``scripted`` → the rule agent (``scripted:asks``: one that asks for a missing id); ``pkg.module:attr`` → a Python object: a ChatModel,
    a compiled LangGraph graph, a graph factory (``attr`` named ``make_*``), or an agent function.
    """
    if spec is None or spec == "reference" or spec.startswith("reference:"):
        model_spec = spec.split(":", 1)[1] if spec and ":" in spec else None
        return ReferenceAgent(resolve_model(model_spec), max_tokens=max_tokens)
    if spec.startswith(("http://", "https://")):
        return endpoint_agent(spec)
    if spec in ("scripted", "scripted:asks"):
        return ScriptedAgent(asks=spec.endswith(":asks"))
    if ":" not in spec:
        raise ValueError(f"unknown agent {spec!r}: use reference[:MODEL], scripted, http(s)://host/v1 "
                         f"or pkg.module:attr")
    module_name, attr = spec.split(":", 1)
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load agent {spec!r}: {e}") from None
    return as_agent(obj, name=attr)


def as_agent(obj: Any, name: str = "agent") -> AgentUnderTest:
    """Adapt a Python object to an agent under test (see ``load_agent``)."""
    if hasattr(obj, "bind") and hasattr(obj, "name") and not hasattr(obj, "ainvoke"):
        return obj
    if hasattr(obj, "complete") and hasattr(obj, "stream"):
        return ModelAgent(obj, name=name)
    if hasattr(obj, "ainvoke") or name.startswith("make_"):
        return GraphAgent(obj, name=name)
    if callable(obj):
        return callable_agent(obj, name=name)
    raise ValueError(f"{name}: not a ChatModel, a LangGraph graph, a graph factory or a function")
