"""One turn as a LangGraph ``StateGraph``, compiled once per policy. Its nodes and edges, exactly:

    START ─▶ diagnose ─┬─▶ incept ─▶ agent*
                       └─────────▶ agent*
    agent* ─┬─▶ (rein-owned tool call) ─▶ resolve ─┬─▶ agent*   (its result goes back to the agent)
            │                                      └─▶ respond ─▶ END   (the recovery tool ended the turn)
            ├─▶ (malformed call, once; held call or reply, up to actions.max_rounds) ─▶ recheck ─▶ agent*
            ├─▶ (refiners planned) ─▶ refine ─▶ respond ─▶ END
            └─▶ END   (a client tool call, or no refiner planned: the turn is finished)

A held tool call (an action check's finding with ``hold``) never reaches the client: the agent is
re-asked with the plan, and past the policy's rounds the held calls are dropped from the reply,
which says so (``middleware.action_hold``); a stream holds its tool-call chunks until they are
checked whenever ``Inception.checks_calls`` says a check may hold one.

(START may also enter at incept, resolve, recheck or refine: ``resume`` names the stage.)

``agent*`` is a fused node, on purpose: after the model call and the draft check it runs the
plan_refine stage (the planner, on a text draft) and, when the turn ends there (no refiner
planned, or a client tool call), respond's work, in the same node. Each graph step costs ~0.15 ms
and most turns end there, so plan_refine is a stage and not a node; ``respond`` is a node only
for the turns that reach it through refine or resolve. Routers return node names only (``_on_loop``
checks it); ``after_draft`` names the next *stage* (``plan_refine`` and ``respond`` included) and
is not a router.

A stream is decided before the draft (``stream_mode``): ``pass`` when no refiner applies, ``sentences``
when only rules may change the reply (each sentence goes out once checked; the refinement is done
when the stream is), ``whole`` when a refiner may ask rein's model (held, then re-emitted in the
upstream's own chunks).

A non-streaming turn (``run``) walks these nodes and routers directly, without LangGraph's step
machinery: that machinery costs CPU on every turn, and it yields to the event loop some thirty
times a turn where the direct walk yields only for the agent's answer; under load each yield waits
behind every other request's work, which made the turns that had work (a diagnosis, a re-ask) the
whole of rein's tail (``bench/load.py --stalls``). A stream (``events``) is walked the same way, its
chunks carried by a writer of its own. ``run_graph`` is the reference the walk is held to
(tests/test_real_cost.py, tests/test_action_hold_units.py: both give the same turn).
"""
from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from typing import Any

from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from inception.base import Diagnosis, Inception
from middleware import tracing
from middleware.incidents import Incidents
from middleware.action_hold import act_on, without_dropped
from middleware.agent_stream import PASS, SENTENCES, WHOLE, Notice, relay_agent_stream, released_calls
from middleware.models.chunks import reshape, response_chunks
from middleware.rule_modes import record as record_hits, sort_diagnosis, sort_refinement
from middleware.state import TurnState
from policies.budget import TurnBudget
from policies.messages import ToolMessage, assistant, text_of
from policies.chat_model import ChatModel, ModelResponse
from policies.rules import RuleModes
from policies.schema import Policy
from refiners.base import RefinePlan, Refinement, Refinery, TurnContext
from refiners.profile import profile_from_metadata
from refiners.store import ProfileKeeper

MAX_ROUNDS = 4  # rein-owned tool calls resolved per turn before rein stops looping
_ENTRIES = ("diagnose", "incept", "resolve", "recheck", "refine")  # where a turn can enter the graph
AFTER_DIAGNOSE = ("incept", "agent")
AFTER_AGENT = ("resolve", "recheck", "refine", END)
AFTER_RESOLVE = ("agent", "respond")
FIXED_EDGES = {"incept": "agent", "recheck": "agent", "refine": "respond", "respond": END}


class Pipeline:
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
        # the proxy copies these into the request (middleware.proxy.app.pack_headers).
        self.reads_headers = [s.header.lower() for s in policy.actions.now if s.header]
        self.decisions = decisions  # middleware.decisions.DecisionLog: every turn's hits, off the request's path
        self._nodes = {"diagnose": self.diagnose, "incept": self.incept, "agent": self.call_agent,
                       "resolve": self.resolve, "recheck": self.recheck, "refine": self.refine, "respond": self.respond}
        self.graph = self._build()

    # ---- nodes -------------------------------------------------------------------------
    async def diagnose(self, state: TurnState) -> dict[str, Any]:
        request = state["request"]
        notes = list(state.get("notes") or [])
        profile = await self._profile(request, state.get("profile"), notes)
        budget = state["budget"]
        diagnosis = await self._guarded("diagnose", self.inception.diagnose(request.messages, request.tools),
                                        Diagnosis(), notes, budget)
        budget.spend(diagnosis.model_calls)
        diagnosis, hits = sort_diagnosis(diagnosis, self.modes)  # a rule that may not act plants nothing
        mode = PASS
        if self.policy.refiners.enabled and state.get("stream"):  # only a stream needs to know this early
            ctx = TurnContext.model_construct(
                messages=request.messages, tools=request.tools, profile=profile, user=request.extra.get("user"),
                documents=[], model_calls_used=budget.calls_used, budget=budget)
            try:
                if self.refinery.may_refine(ctx):
                    mode = SENTENCES if self._sentence_check(ctx) is not None else WHOLE
            except Exception as e:  # fail open: a stream nobody can check goes out as the agent writes it
                mode = PASS
                notes.append(f"stream_check: internal error ({type(e).__name__}); the reply streams unchecked")
                tracing.event("rein.stream_check.skipped", {"reason": notes[-1]})
        if mode != PASS and self.modes.softens("refine"):
            # Shadow holds no stream (the refiners run once it has gone out, to record what they would
            # have changed); a refiner rule that may not act cannot be undone sentence by sentence.
            mode = PASS if self.modes.shadow else WHOLE
        notes += diagnosis.notes
        return {"diagnosis": diagnosis, "hits": hits, "may_refine": mode != PASS, "stream_mode": mode,
                "messages": request.messages,
                "tools": request.tools, "notes": notes, "rounds": 0, "upstream_ms": 0.0, "profile": profile}

    async def _profile(self, request, given: dict[str, Any] | None, notes: list[str]) -> dict[str, Any] | None:
        """The request's profile (SDK argument or ``metadata.rein_profile``) over the stored one."""
        given = given or profile_from_metadata(request.extra)
        if self.profiles is None or not self.policy.refiners.enabled or "persona" not in self.policy.refiners.refiners:
            return given
        profile, note = await self.profiles.lookup(request.extra.get("user"), given)
        if note:
            notes.append(note)
        return profile

    async def incept(self, state: TurnState) -> dict[str, Any]:
        with tracing.guardrail("inject", "modify", current=True):
            messages, tools = self.inception.inject(state["messages"], state["tools"], state["diagnosis"])
        return {"messages": messages, "tools": tools}

    async def call_agent(self, state: TurnState) -> dict[str, Any]:
        request = state["request"].model_copy(update={"messages": state["messages"], "tools": state["tools"]})
        started = time.perf_counter()
        streamed = False
        # self.agent is Instrumented (Engine): its `chat` span and usage belong to the wrapper.
        if state.get("stream"):
            mode = state.get("stream_mode", PASS)
            check = self._sentence_check(self._ctx(state)) if mode == SENTENCES else None
            relayed = await relay_agent_stream(
                self.agent, request, _writer(), self.inception.owned_tools(state["request"].tools),
                mode=SENTENCES if check is not None else WHOLE if mode != PASS else PASS, check=check,
                hold_calls=self.inception.checks_calls(state["request"].tools) and not self.modes.shadow)
            draft, streamed = relayed.draft, relayed.streamed
            stream_out = {"held_chunks": relayed.held, "held_at": relayed.held_at,
                          "stream_report": relayed.report, "call_chunks": relayed.calls}
            if relayed.check is not None and streamed:
                # Checked as it streamed: the refinement is done, and is what the client got.
                stream_out["refinement"] = relayed.check.refinement(text_of(draft.message))
            if relayed.check is not None and relayed.check.skipped_notes():  # a refiner raised, or the size limit
                stream_out["notes"] = [*(state.get("notes") or []), *relayed.check.skipped_notes()]
                tracing.event("rein.stream_check.skipped", {"reason": "; ".join(relayed.check.skipped_notes())})
        else:
            draft = await self.agent.complete(request)
        waited = (time.perf_counter() - started) * 1000
        out = {"draft": draft, "streamed": streamed, "rounds": state.get("rounds", 0) + 1,
               "upstream_ms": state.get("upstream_ms", 0.0) + waited, "draft_check": None, "dropped_calls": []}
        if state.get("stream"):
            out.update(stream_out)
        # A streamed call already went out; under shadow it is still checked, to record what would be held.
        if draft.message.tool_calls and (not streamed or self.modes.shadow):
            out.update(act_on(self._check_draft(state, draft), draft, {**state, **out}, self.modes,
                              self.policy.actions.max_rounds, sent=streamed))
        elif not draft.message.tool_calls and self.inception.checks_calls(state["request"].tools):
            # A reply saying an action was done that no call did: re-asked while unsent, else reported.
            reply = self.inception.check_reply(state["messages"], draft.message)
            if reply.found:
                out.update(act_on(reply, draft, {**state, **out}, self.modes, self.policy.actions.max_rounds,
                                  sent=streamed))
        # Planning and finishing happen in this node: every graph step costs ~0.15 ms, and the
        # clean path (diagnose ─▶ agent ─▶ END) should pay for as few as possible.
        merged: Any = {**state, **out}
        step = self.after_draft(merged)
        if step == "plan_refine":
            out.update(await self.plan_refine(merged))
        elif step == "respond":
            out.update(self._finish(merged))
        return out

    async def recheck(self, state: TurnState) -> dict[str, Any]:
        """Re-ask the agent with what was wrong with its tool calls planted as a plan: once for a
        malformed call, up to the policy's ``actions.max_rounds`` for a call an action check held."""
        check = state["draft_check"]
        diagnosis = state["diagnosis"]
        merged = diagnosis.model_copy(update={"errors": [*diagnosis.errors, *check.errors]})
        with tracing.guardrail("draft_tool_call", "modify", current=True):
            messages, tools = self.inception.inject(state["messages"], state["tools"], check)
        held = any(d.hold for d in check.errors)
        return {"messages": messages, "tools": tools, "diagnosis": merged, "draft_check": None,
                "rechecked": state.get("rechecked", False) or not all(d.hold for d in check.errors),
                "hold_rounds": state.get("hold_rounds", 0) + held}

    async def resolve(self, state: TurnState) -> dict[str, Any]:
        """Answer calls to rein-owned tools inside rein; never show them to the client."""
        draft = state["draft"]
        owned = self.inception.owned_tools(state["request"].tools)
        messages = list(state["messages"]) + [draft.message]
        reported: dict[str, Any] = {}
        for call in draft.message.tool_calls or []:
            if call.function.name not in owned:
                continue
            with tracing.guardrail(f"tool {call.function.name}", "modify", current=True):
                resolution = await self.inception.resolve(call, state["messages"])
                if resolution.incident is not None:  # the reply tells the user it was reported: report it
                    self.incidents.report(resolution.incident, self.policy.name)
                    tracing.event("rein.incident", resolution.incident.model_dump(exclude_none=True))
                    reported.setdefault("incidents", list(state.get("incidents") or [])).append(resolution.incident)
            if resolution.end_turn:
                final = ModelResponse(message=assistant(resolution.reply), model=draft.model,
                                      finish_reason="stop", usage=draft.usage, raw=draft.raw)
                return {**reported, "draft": final, "streamed": False, "messages": messages, "call_chunks": [],
                        "dropped_calls": []}
            messages.append(ToolMessage(tool_call_id=call.id, content=resolution.tool_result))
        return {**reported, "messages": messages}

    async def plan_refine(self, state: TurnState) -> dict[str, Any]:
        notes = list(state.get("notes") or [])
        plan = await self._guarded("plan_refine", self.refinery.plan(self._ctx(state), text_of(state["draft"].message)),
                                   RefinePlan(reason="planner failed"), notes, state["budget"])
        state["budget"].spend(plan.model_calls)
        if plan.refiners:
            return {"plan": plan, "notes": notes}
        # Most turns need no refiner: finish here rather than pay a graph step for respond.
        return {"plan": plan, "notes": notes, **self._finish(state)}

    async def refine(self, state: TurnState) -> dict[str, Any]:
        draft_text = text_of(state["draft"].message)
        notes = list(state.get("notes") or [])
        result = await self._guarded("refine", self.refinery.refine(self._ctx(state), draft_text, state["plan"]),
                                     Refinement(draft=draft_text, final=draft_text), notes, state["budget"])
        state["budget"].spend(result.model_calls - state["plan"].model_calls)  # a Refinement counts its plan's
        notes += result.notes
        return {"refinement": result, "notes": notes}

    async def respond(self, state: TurnState) -> dict[str, Any]:
        return self._finish(state)

    def _finish(self, state: TurnState) -> dict[str, Any]:
        draft = state["draft"]
        final = draft
        refinement = state.get("refinement")
        hits = list(state.get("hits") or [])
        out: dict[str, Any] = {}
        if refinement is not None and refinement.steps:
            refinement, more = sort_refinement(refinement, self.modes)  # a rule that may not act changes nothing
            out["refinement"], hits = refinement, hits + more
        if refinement is not None and refinement.changed:
            final = draft.model_copy(update={"message": assistant(refinement.final, draft.message.tool_calls)})
        final, dropped = self._without_owned(state, final)
        final, notice = without_dropped(final, state.get("dropped_calls"))  # held past the policy's rounds
        if dropped:
            out["notes"] = [*(state.get("notes") or []),
                            f"resolve: {', '.join(dropped)} still called after {MAX_ROUNDS} rounds; not shown to the client"]
        if state.get("stream") and not state.get("streamed"):
            self._send_held(state, final, notice)
        if (self.profiles is not None and self.policy.refiners.enabled and self.policy.refiners.learn_profiles
                and not final.message.tool_calls):
            # Learn from the dialogue off the critical path: a task that runs after the reply goes out.
            self.profiles.remember_later(state["request"].extra.get("user"), state["request"].messages)
        if hits:
            record_hits(hits)
            out["hits"] = hits
        if self.decisions is not None:
            rein_ms = (time.perf_counter() - state.get("started", time.perf_counter())) * 1000 - state.get("upstream_ms", 0.0)
            self.decisions.turn(self.policy, state["request"], hits, final.message, rein_ms)
        return {**out, "final": final}

    def _without_owned(self, state: TurnState, final: ModelResponse) -> tuple[ModelResponse, list[str]]:
        """rein-owned tools never reach the client: calls to them still pending when rein stops
        looping (MAX_ROUNDS) are dropped, and a reply left empty says that it could not finish."""
        calls = final.message.tool_calls or []
        owned = self.inception.owned_tools(state["request"].tools) if calls else set()
        dropped = [c.function.name for c in calls if c.function.name in owned]
        if not dropped:
            return final, []
        kept = [c for c in calls if c.function.name not in owned] or None
        text = text_of(final.message) or (None if kept else "I'm sorry, I could not finish that. Please try again.")
        message = assistant(text, kept)
        return final.model_copy(update={"message": message, "finish_reason": "tool_calls" if kept else "stop"}), dropped

    def _send_held(self, state: TurnState, final: ModelResponse, notice: str = "") -> None:
        """A reply held whole goes out in the upstream's own chunks (ids, fields, chunking), with
        the refined text; a reply rein wrote itself (a recovery tool's) in the upstream's shape;
        tool calls held for the action checks as the upstream sent them, less the dropped ones."""
        writer = _writer()
        if state.get("call_chunks"):
            for c in released_calls(state["call_chunks"], {d.call_id for d in state.get("dropped_calls") or []}, notice):
                writer(c)
            return
        held = state.get("held_chunks") or []
        text = final.message.content if isinstance(final.message.content, str) else ""
        chunks = reshape(held, text) if held and not final.message.tool_calls else \
            response_chunks(final, like=held[0] if held else None)
        for c in chunks:
            writer(c)
        report = state.get("stream_report")
        if report is not None and state.get("held_at"):
            report.held_ms = (time.perf_counter() - state["held_at"]) * 1000

    def _check_draft(self, state: TurnState, draft: ModelResponse) -> Diagnosis:
        headers = state["request"].headers
        now = next((headers[h] for h in self.reads_headers if h in headers), None) if headers else None
        try:
            return self.inception.check_draft(state["messages"], state["tools"], draft.message, now=now)
        except Exception as e:  # fail open: a check that breaks lets the calls go out as drafted
            tracing.event("rein.draft_check.skipped", {"reason": f"{type(e).__name__}: {e!s:.120}"})
            return Diagnosis(notes=[f"draft_check: internal error ({type(e).__name__}); the calls went out unchecked"])

    def _sentence_check(self, ctx: TurnContext):
        # A Refinery written before streams were checked by sentence holds the whole reply.
        sentence_check = getattr(self.refinery, "sentence_check", None)
        return sentence_check(ctx) if sentence_check is not None else None

    # ---- routers -----------------------------------------------------------------------
    def entry(self, state: TurnState) -> str:
        """Where the graph starts: diagnose, or the stage ``resume`` names."""
        return state.get("resume") or "diagnose"

    def after_diagnose(self, state: TurnState) -> str:
        return "incept" if state["diagnosis"].plan or state["diagnosis"].recovery_tools else "agent"

    def after_agent(self, state: TurnState) -> str:
        if state.get("final") is not None:
            return END
        if state.get("plan") is not None and state["plan"].refiners and "refinement" not in state:
            return "refine"
        # The fused node ran plan_refine or respond itself; what is left is a node of its own.
        step = self.after_draft(state)
        return step if step in ("resolve", "recheck") else END

    def after_draft(self, state: TurnState) -> str:
        """The stage after a draft: recheck, resolve, plan_refine or respond (the agent node runs the
        last two itself)."""
        calls = state["draft"].message.tool_calls
        if state.get("draft_check") is not None:  # a malformed or held call, or a reply an action check held
            return "recheck"
        if calls:
            owned = self.inception.owned_tools(state["request"].tools)
            if owned and any(c.function.name in owned for c in calls) and state.get("rounds", 0) < MAX_ROUNDS:
                return "resolve"
            return "respond"  # a tool-call draft is never refined
        # A draft that already streamed out cannot be refined any more (under shadow: refined to record
        # what would have changed, the client's stream untouched).
        refinable = not state.get("streamed") or self.modes.shadow
        return "plan_refine" if self.policy.refiners.enabled and refinable else "respond"

    def after_resolve(self, state: TurnState) -> str:
        # A tool result means the agent goes on; an ended turn left the assistant call last.
        return "agent" if isinstance(state["messages"][-1], ToolMessage) else "respond"

    # ---- helpers -----------------------------------------------------------------------
    def _ctx(self, state: TurnState) -> TurnContext:
        request = state["request"]
        budget = state["budget"]
        # Built from state already validated: constructed, not re-validated, so ctx.messages stays the
        # very list the planner's and the refiners' Turns share their evidence by (refiners/turn.py).
        return TurnContext.model_construct(messages=state["messages"], tools=request.tools, profile=state.get("profile"),
                                           user=request.extra.get("user"),
                                           model_calls_used=budget.calls_used, budget=budget,
                                           documents=[])  # every field given: pydantic inspects a default
                                                          # factory's signature on each construct (~0.1 ms)

    async def _guarded(self, stage: str, work, fallback, notes: list[str], turn_budget: TurnBudget):
        """Fail open: a stage that errors or overruns its budget is skipped, and noted."""
        budget = turn_budget.stage_seconds(stage)
        try:
            async with asyncio.timeout(budget):  # not wait_for: no extra task per stage on the hot path
                return await work
        except TimeoutError:
            notes.append(f"{stage}: over budget ({budget:g}s)")
        except Exception as e:  # rein never turns a working agent into a broken one
            notes.append(f"{stage}: {type(e).__name__}: {e!s:.120}")
        tracing.event(f"rein.{stage}.skipped", {"reason": notes[-1]})
        return fallback

    def _build(self):
        g = StateGraph(TurnState)
        for name, node in self._nodes.items():
            g.add_node(name, node)
        g.add_conditional_edges(START, _on_loop(self.entry, _ENTRIES), list(_ENTRIES))
        g.add_conditional_edges("diagnose", _on_loop(self.after_diagnose, AFTER_DIAGNOSE), list(AFTER_DIAGNOSE))
        g.add_conditional_edges("agent", _on_loop(self.after_agent, AFTER_AGENT), list(AFTER_AGENT))
        g.add_conditional_edges("resolve", _on_loop(self.after_resolve, AFTER_RESOLVE), list(AFTER_RESOLVE))
        for node, after in FIXED_EDGES.items():
            g.add_edge(node, after)
        return g.compile()

    def _walk_step(self, node: str, state: TurnState) -> str:
        """The node after ``node``: the graph's own edges and routers, for ``run``'s direct walk."""
        if node in FIXED_EDGES:
            return FIXED_EDGES[node]
        return {"diagnose": self.after_diagnose, "agent": self.after_agent, "resolve": self.after_resolve}[node](state)

    # ---- entry points ------------------------------------------------------------------
    def initial(self, request, stream: bool = False, profile: dict[str, Any] | None = None) -> TurnState:
        return {"request": request, "stream": stream, "profile": profile, "notes": [],
                "budget": TurnBudget(self.policy.budgets), "started": time.perf_counter()}

    async def run(self, request, profile: dict[str, Any] | None = None) -> TurnState:
        """One non-streaming turn: the graph's nodes and routers walked directly (see the module's
        docstring), each node's update merged as the graph's last-value channels merge it."""
        state: dict[str, Any] = dict(self.initial(request, False, profile))
        await self._walk(state)
        return state  # type: ignore[return-value]

    async def _walk(self, state: dict[str, Any], diagnosed: Any = None) -> None:
        node = "diagnose"
        while node != END:
            state.update(await self._nodes[node](state))
            if node == "diagnose" and diagnosed is not None:
                diagnosed()
            node = self._walk_step(node, state)

    async def run_graph(self, request, profile: dict[str, Any] | None = None) -> TurnState:
        """The same turn through the graph from its first stage (the reference the direct walk is held to)."""
        return await self.graph.ainvoke(self.initial(request, False, profile))

    async def events(self, request, profile: dict[str, Any] | None = None, notices: bool = False):
        """Yield ("chunk", dict) as the reply streams, then ("state", TurnState) once at the end.
        A ("diagnosed", TurnState-so-far) event comes before the first chunk; with ``notices``,
        ("notice", "refining") when the text is held whole.

        Walked directly like ``run``: a task walks the nodes, and what they write (chunks, notices)
        reaches this generator through one queue, in the order it was written."""
        state: dict[str, Any] = dict(self.initial(request, True, profile))
        queue: asyncio.Queue[Any] = asyncio.Queue()

        async def walk() -> None:
            _WRITER.set(queue.put_nowait)  # this task's context only: the nodes' stream writer
            try:
                await self._walk(state, lambda: queue.put_nowait(_DIAGNOSED))
                queue.put_nowait(_DONE)
            except Exception as e:  # raised to the reader, where the graph's run raised it
                queue.put_nowait(_Failed(e))

        walker = asyncio.get_running_loop().create_task(walk())
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


# The stream writer of a walked turn (``events``); in the graph, LangGraph's own.
_WRITER: ContextVar[Any] = ContextVar("rein_stream_writer", default=None)
_DIAGNOSED, _DONE = object(), object()


class _Failed:
    def __init__(self, error: Exception):
        self.error = error


def _writer() -> Any:
    return _WRITER.get() or get_stream_writer()


def _on_loop(router, targets: tuple[str, ...]):
    """Under ainvoke LangGraph runs a sync router in a thread pool: a thread hop (and a GIL
    hand-off, ~1 ms on a busy machine) per edge. Routers are pure and instant: keep them on the loop.
    A router answers only with a node its edges name (checked: asserts are on in the tests)."""
    async def route(state: TurnState) -> str:
        step = router(state)
        assert step in targets, f"{router.__name__} routed to {step!r}, not one of {targets}"
        return step

    route.__name__ = router.__name__
    return route
