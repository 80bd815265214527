"""The SDK: rein's stages around your own agent, in-process.

Example::

    from middleware import Rein

    rein = Rein(policy="default", rein_model="openai/gpt-4o-mini")   # unset: the policy's rules only

    @rein.guard
    def agent(messages, tools=None):
        return client.chat.completions.create(model="gpt-4o", messages=messages).choices[0].message.content

    reply = agent([{"role": "user", "content": "Where is my order?"}])
    reply.rein.diagnosis.header(), reply.rein.refined      # what rein did

    graph = rein.wrap_graph(compiled_langgraph)             # same ainvoke/invoke shape
    agent = create_agent(llm, tools, middleware=[rein.middleware()])
"""
from __future__ import annotations

import functools
import inspect
import logging
from datetime import datetime
from typing import Any, Callable, Sequence

from middleware.adapters.clock import now_headers
from middleware.adapters.function_agent import Call, FunctionAgent, current_call, reshape
from middleware.adapters.isolation import CallerContext, run_turn
from middleware.adapters.lc_messages import as_rein_messages
from middleware.adapters.report import ReinReport, attach, report_of
from middleware.adapters.sync import run_sync
from middleware.engine import Engine
from middleware.models import resolve_model
from middleware.pipeline import Pipeline
from policies.chat_model import ChatModel, ModelRequest
from policies.schema import Policy
from refiners.store import PersonaStore, open_store

ModelSpec = ChatModel | str | None


class Rein:
    """An engine (policy + models) and the ways to put it around an agent.

    ``model`` is the agent model for ``complete``/``acomplete`` (the wrapped function, graph or
    LangChain model is the agent everywhere else; unset: the embedded model, loaded lazily).
    ``rein_model`` serves rein's own calls (diagnosis, refiners): a ChatModel, a spec string
    (``http(s)://.../v1``, a litellm name, ``local``), or ``"upstream"`` to reuse ``model`` on
    purpose. Unset, rein's model stages do not run: the policy runs its rules only, and says so
    once in the ``rein`` logger — rein never sends its prompts to your agent unasked.
    """

    def __init__(self, policy: str | Policy = "default", model: ModelSpec = None,
                 rein_model: ModelSpec = None, api_key: str | None = None,
                 personas: PersonaStore | str | None = None,
                 detectors: Sequence[Any] = (), refiners: Sequence[Any] = ()):
        """``detectors``/``refiners``: your own plug-ins (``policies.plugins``), run with the
        policy's on every path (complete, guard, wrap_graph, middleware); checked here."""
        self.model = _model(model, api_key)
        if rein_model == "upstream" and self.model is None:
            raise ValueError("rein_model='upstream' reuses model=, which is not set")
        own = self.model if rein_model == "upstream" else _model(rein_model, api_key)
        # Persona profiles persist across sessions only when a store is given (path or DSN).
        store = open_store(personas) if isinstance(personas, str) else personas
        self.engine = Engine(agent=self.model or resolve_model(None), policy=policy, rein_model=own, personas=store,
                             detectors=detectors, refiners=refiners)
        if why := self.engine.rules_only():
            logging.getLogger("rein").warning("%s (pass Rein(rein_model=...) to run its model stages)", why)

    @property
    def policy(self) -> Policy:
        return self.engine.default_policy

    def pipeline_for(self, agent: ChatModel, policy: str | Policy | None = None) -> Pipeline:
        """A pipeline compiled around ``agent`` (build once per wrapped agent, reuse per call)."""
        return self.engine.pipeline(policy, agent=agent)

    # ---- persona profiles (the user's right to read and erase) -------------------------
    async def aprofile(self, user: str) -> dict[str, Any] | None:
        """The stored profile of ``user``, or None (also when no store is configured)."""
        return await self.engine.personas.get(user) if self.engine.personas is not None else None

    async def aforget(self, user: str) -> bool:
        """Delete the stored profile of ``user``; True when there was one."""
        return await self.engine.personas.delete(user) if self.engine.personas is not None else False

    def profile(self, user: str) -> dict[str, Any] | None:
        return run_sync(self.aprofile(user))

    def forget(self, user: str) -> bool:
        return run_sync(self.aforget(user))

    # ---- a plain model call ----------------------------------------------------------
    async def acomplete(self, messages: list[Any], tools: list[dict[str, Any]] | None = None, *,
                        now: datetime | str | None = None, **settings: Any) -> Any:
        """One turn on ``model`` with the stages around it: the final AssistantMessage, with ``.rein``.
        ``now``: the dialogue's time for the pack's action rules (as the proxy's ``x-rein-now``)."""
        pipeline = self.engine.pipeline()
        request = ModelRequest(messages=as_rein_messages(messages), tools=tools, extra=settings,
                               headers=now_headers(pipeline, now))
        state = await run_turn(pipeline, request)
        return attach(state["final"].message, ReinReport.from_state(pipeline.policy.name, state))

    def complete(self, messages: list[Any], tools: list[dict[str, Any]] | None = None, *,
                 now: datetime | str | None = None, **settings: Any) -> Any:
        return run_sync(self.acomplete(messages, tools, now=now, **settings))

    # ---- the three wrappers ----------------------------------------------------------
    def guard(self, fn: Callable[..., Any] | None = None, *, policy: str | Policy | None = None) -> Any:
        """Decorate an agent function ``fn(messages, [tools=None], *args, **kwargs)`` (sync or async).

        The guarded function takes the same arguments and returns what ``fn`` returned (text,
        a message dict, ...), revised where rein refined it, with ``.rein`` (a ReinReport).
        Extra arguments reach ``fn`` unchanged on every agent call of the turn, but ``rein_now``:
        the dialogue's time for the pack's action rules (a datetime or ISO text), kept by rein.
        """
        if fn is None:
            return functools.partial(self.guard, policy=policy)
        agent = FunctionAgent(fn)
        pipeline = self.pipeline_for(agent, policy)
        tools_second = agent.takes_tools and list(inspect.signature(fn).parameters)[1:2] == ["tools"]

        async def turn(caller: CallerContext, messages: list[Any], tools: list[dict[str, Any]] | None,
                       args: tuple, kwargs: dict[str, Any]) -> Any:
            headers = now_headers(pipeline, kwargs.pop("rein_now", None))
            call = Call(args, kwargs, caller)
            token = current_call.set(call)
            try:
                state = await run_turn(pipeline, ModelRequest(messages=as_rein_messages(messages), tools=tools,
                                                              headers=headers))
            finally:
                current_call.reset(token)
            original = call.returned[-1] if call.returned else None
            report = ReinReport.from_state(pipeline.policy.name, state)
            return attach(reshape(original, state["final"].message), report)

        if inspect.iscoroutinefunction(fn):
            @functools.wraps(fn)
            async def guarded_async(messages, *args, tools=None, **kwargs):
                if tools_second and args:  # called as fn(messages, tools, ...)
                    tools, args = args[0], args[1:]
                return await turn(CallerContext(), messages, tools, args, kwargs)
            guarded = guarded_async
        else:
            @functools.wraps(fn)
            def guarded_sync(messages, *args, tools=None, **kwargs):
                if tools_second and args:
                    tools, args = args[0], args[1:]
                return run_sync(turn(CallerContext(), messages, tools, args, kwargs))
            guarded = guarded_sync
        guarded.pipeline = pipeline  # type: ignore[attr-defined]
        return guarded

    def wrap_graph(self, graph: Any, *, policy: str | Policy | None = None, key: str = "messages") -> Any:
        """A compiled LangGraph graph with a messages state, with rein's stages around each run.
        The dialogue's time for the action rules: ``config={"configurable": {"rein_now": ...}}``."""
        from middleware.adapters.graph import GuardedGraph

        return GuardedGraph(self.engine, graph, policy=policy, key=key)

    def middleware(self, *, policy: str | Policy | None = None) -> Any:
        """A LangChain v1 AgentMiddleware for ``create_agent(..., middleware=[...])``."""
        from middleware.adapters.agent_middleware import ReinMiddleware

        return ReinMiddleware(self.engine, policy=policy)


def _model(spec: ModelSpec, api_key: str | None) -> ChatModel | None:
    if spec is None or not isinstance(spec, str):
        return spec
    return resolve_model(spec, api_key)


__all__ = ["Rein", "ReinReport", "report_of", "run_turn"]
