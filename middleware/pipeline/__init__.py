"""One turn of rein, stage by stage (docs/architecture.md draws it):

- ``stages.py``     one async function per stage, ``stage(pipeline, state) -> partial state``:
                    diagnose, incept, agent, check_actions, recheck, resolve, plan_refine, refine, respond;
- ``routes.py``     the routers: pure functions naming the next stage;
- ``graph.py``      the LangGraph ``StateGraph`` of those stages and routers, compiled once per pipeline
                    (and once per stage a turn is handed over at, when first asked);
- ``clean_path.py`` the shortcut: stages called directly while none has work, then the graph from
                    the first stage that has (a test holds both to the same turns);
- ``read_ahead.py`` what rein does while the agent writes (once it has taken 2 ms): the refiners
                    and the action checks read the dialogue (their ``prepare``), so the stages
                    after the draft find it read;
- ``stream.py``     a stream's mode (pass, sentences, whole), its one sentence checker, the agent's
                    stream relayed, the refiners' ``TurnContext`` (``turn_context``);
- ``middleware/state.py`` the ``TurnState`` they share (``notes`` appended, the rest replaced).

``Pipeline.run`` answers a turn in one piece; ``Pipeline.events`` streams one (the proxy's two
paths); ``run_graph`` and ``events(whole_graph=True)`` are the graph alone, the clean path's reference.
"""
from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from typing import Any

from langgraph.graph import END

from inception.base import Inception
from middleware.agent_stream import Notice
from middleware.incidents import Incidents
from middleware.pipeline import graph, stream
from middleware.pipeline.clean_path import clean_path
from middleware.state import TurnState, merge
from policies.budget import TurnBudget, charging
from policies.chat_model import ChatModel
from policies.rules import RuleModes
from policies.schema import Policy
from refiners.base import Refinery
from refiners.store import ProfileKeeper


class Pipeline:
    """The parts of one policy's turn (read by the stages when they run) and its compiled graph."""

    def __init__(self, policy: Policy, agent: ChatModel, inception: Inception, refinery: Refinery,
                 profiles: ProfileKeeper | None = None, decisions: Any = None, shadow: bool = False,
                 incidents: Incidents | None = None):
        self.policy = policy
        self.incidents = incidents or Incidents()  # failures the agent reported: told to the operators
        self.agent = agent
        self.inception = inception
        self.refinery = refinery
        self.profiles = profiles  # persona store: looked up before the draft, updated after the reply
        # What each rule may change (policies.rules): a pack's rules:, its shadow:, or --shadow.
        self.modes = RuleModes.of(policy, shadow=policy.shadow or shadow)
        # Request headers the pack reads (the dialogue's "now" for its action rules), lower-cased:
        # the proxy copies these into the request (middleware.proxy.headers.pack_headers).
        self.reads_headers = [s.header.lower() for s in policy.actions.now if s.header]
        self.decisions = decisions  # middleware.decisions.DecisionLog: every turn's hits, off the request's path
        self.graph = graph.build(self)

    def initial(self, request, stream: bool = False, profile: dict[str, Any] | None = None) -> TurnState:
        return {"request": request, "stream": stream, "profile": profile, "notes": [],
                "budget": TurnBudget(self.policy.budgets), "started": time.perf_counter()}

    async def run(self, request, profile: dict[str, Any] | None = None) -> TurnState:
        """One non-streaming turn: the clean path while no stage has work, then the graph."""
        state: dict[str, Any] = dict(self.initial(request, False, profile))
        with charging(state["budget"]):  # rein's own model charges this turn's budget (Charged)
            step = await clean_path(self, state)
            if step == END:
                return state  # type: ignore[return-value]
            state["resume"] = step
            async for update in self.graph.astream(state, stream_mode="updates"):
                _apply(state, update)
            return state  # type: ignore[return-value]

    async def run_graph(self, request, profile: dict[str, Any] | None = None) -> TurnState:
        """The same turn through the graph alone, from START (the reference the clean path is held to)."""
        state = self.initial(request, False, profile)
        with charging(state["budget"]):
            return await self.graph.ainvoke(state)

    async def events(self, request, profile: dict[str, Any] | None = None, notices: bool = False,
                     whole_graph: bool = False):
        """Yield ("chunk", dict) as the reply streams, then ("state", TurnState) once at the end.
        A ("diagnosed", TurnState-so-far) event comes before the first chunk; with ``notices``,
        ("notice", "refining") when the text is held whole. ``whole_graph``: no clean path (the reference).

        A task walks the turn (the clean path, then the graph's ``astream`` from the stage that has
        work); what it writes reaches this generator through one queue, in the order it was written."""
        state: dict[str, Any] = dict(self.initial(request, True, profile))
        queue: asyncio.Queue[Any] = asyncio.Queue()
        walker = asyncio.get_running_loop().create_task(self._walk(state, queue, whole_graph))
        try:
            while (item := await queue.get()) is not _DONE:
                if item is _DIAGNOSED:
                    yield "diagnosed", state
                elif isinstance(item, _Failed):
                    raise item.error
                elif isinstance(item, Notice):
                    if notices:
                        yield "notice", item.text
                else:
                    yield "chunk", item
        finally:
            walker.cancel()  # a reader that stops early (the client hung up) stops the walk
        yield "state", state

    async def _walk(self, state: dict[str, Any], queue: asyncio.Queue, whole_graph: bool) -> None:
        # This task's context only: the clean path's stream writer, and the budget rein's calls charge.
        stream.set_writer(queue.put_nowait)
        try:
            with charging(state["budget"]):
                await self._stream_turn(state, queue, whole_graph)
            queue.put_nowait(_DONE)
        except Exception as e:  # raised to the reader, where the run raised it
            queue.put_nowait(_Failed(e))

    async def _stream_turn(self, state: dict[str, Any], queue: asyncio.Queue, whole_graph: bool) -> None:
        step, announced = "diagnose", False
        if not whole_graph:
            step, announced = await clean_path(self, state, lambda: queue.put_nowait(_DIAGNOSED)), True
        if step == END:
            return
        state["resume"] = step
        # Closed here, also when the walk is cancelled (a client hung up): its node tasks end with it.
        async with aclosing(self.graph.astream(state, stream_mode="updates")) as steps:
            async for update in steps:
                _apply(state, update)
                if not announced and "diagnosis" in state:
                    announced = True
                    queue.put_nowait(_DIAGNOSED)


def _apply(state: dict[str, Any], update: dict[str, Any]) -> None:
    """A graph step's update (``stream_mode="updates"``: each node's partial state) applied as its
    channels apply it. LangGraph's "values" mode would read every channel after each step, and its
    "custom" mode (the stages' chunks) start a task per step: the walk's writer carries the chunks."""
    for partial in update.values():
        if partial:
            merge(state, partial)


_DIAGNOSED, _DONE = object(), object()


class _Failed:
    def __init__(self, error: Exception):
        self.error = error
