"""The stages of one turn, one async function each: ``stage(pipeline, state) -> partial state``.

``pipeline`` is the ``Pipeline`` whose parts a stage uses (``inception``, ``refinery``, ``agent``,
``modes``, ``policy``): read at run time, so a test may swap one in. A stage returns only what it
changed; its ``notes`` are new ones (the state appends them).
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from inception.base import Diagnosis
from middleware import tracing
from middleware.action_hold import act_on, without_dropped
from middleware.agent_stream import released_calls
from middleware.models.chunks import reshape, response_chunks
from middleware.pipeline.read_ahead import now, while_answering
from middleware.pipeline.routes import MAX_ROUNDS
from middleware.pipeline.stream import PASS, decide, relay, turn_context, writer
from middleware.rule_modes import record as record_hits, sort_diagnosis, sort_refinement
from middleware.state import TurnState
from policies.budget import TurnBudget
from policies.chat_model import ModelResponse
from policies.messages import ToolMessage, assistant, text_of
from refiners.base import RefinePlan, Refinement
from refiners.profile import profile_from_metadata


async def diagnose(p: Any, state: TurnState) -> dict[str, Any]:
    """Structural detectors, then (by the policy's trigger) the LLM inception module; for a stream,
    the stream mode too (``stream.decide``): it must be known before the first chunk."""
    request = state["request"]
    notes: list[str] = []
    profile = await _profile(p, request, state.get("profile"), notes)
    diagnosis = await guarded("diagnose", p.inception.diagnose(request.messages, request.tools),
                              Diagnosis(), notes, state["budget"])
    diagnosis, hits = sort_diagnosis(diagnosis, p.modes)  # a rule that may not act plants nothing
    out: dict[str, Any] = {"diagnosis": diagnosis, "hits": hits, "stream_mode": PASS,
                           "messages": request.messages, "tools": request.tools, "rounds": 0,
                           "upstream_ms": 0.0, "profile": profile}
    if state.get("stream"):  # only a stream needs to know this early
        out.update(decide(p, {**state, **out}, notes))
    out["notes"] = notes + diagnosis.notes
    return out


async def _profile(p: Any, request, given: dict[str, Any] | None, notes: list[str]) -> dict[str, Any] | None:
    """The request's profile (SDK argument or ``metadata.rein_profile``) over the stored one."""
    given = given or profile_from_metadata(request.extra)
    if p.profiles is None or not p.policy.refiners.enabled or "persona" not in p.policy.refiners.refiners:
        return given
    profile, note = await p.profiles.lookup(request.extra.get("user"), given)
    if note:
        notes.append(note)
    return profile


async def incept(p: Any, state: TurnState) -> dict[str, Any]:
    """Plant the diagnosis's plan by the policy's strategy (and add its recovery tools)."""
    with tracing.guardrail("inject", "modify", current=True):
        messages, tools = p.inception.inject(state["messages"], state["tools"], state["diagnosis"])
    return {"messages": messages, "tools": tools}


async def agent(p: Any, state: TurnState) -> dict[str, Any]:
    """Ask the agent (``p.agent`` is Instrumented: its ``chat`` span and usage belong to the wrapper);
    a stream is relayed to the client as it comes (``stream.relay``)."""
    request = state["request"].model_copy(update={"messages": state["messages"], "tools": state["tools"]})
    if state.get("stream"):
        out, waited, ahead = await while_answering(p, state, lambda: relay(p, state, request))
    else:
        draft, waited, ahead = await while_answering(p, state, lambda: p.agent.complete(request))
        out = {"draft": draft, "streamed": False}
    return {**out, **ahead, "rounds": state.get("rounds", 0) + 1,
            "upstream_ms": state.get("upstream_ms", 0.0) + waited, "draft_check": None, "dropped_calls": []}


async def check_actions(p: Any, state: TurnState) -> dict[str, Any]:
    """A draft's tool calls against the pack's action rules and the built-in checks; a text draft
    against what it claims was done (``middleware.action_hold.act_on`` decides hold, flag or drop)."""
    draft, streamed = state["draft"], state.get("streamed", False)
    rounds = p.policy.actions.max_rounds
    # A streamed call already went out; under shadow it is still checked, to record what would be held.
    if draft.message.tool_calls and (not streamed or p.modes.shadow):
        return act_on(_check_draft(p, state, draft), draft, state, p.modes, rounds, sent=streamed)
    if not draft.message.tool_calls and p.inception.checks_calls(state["request"].tools):
        # A reply saying an action was done that no call did: re-asked while unsent, else reported.
        reply = p.inception.check_reply(state["messages"], draft.message)
        if reply.found:
            return act_on(reply, draft, state, p.modes, rounds, sent=streamed)
    return {}


def _check_draft(p: Any, state: TurnState, draft: ModelResponse) -> Diagnosis:
    try:
        return p.inception.check_draft(state["messages"], state["tools"], draft.message, now=now(p, state))
    except Exception as e:  # fail open: a check that breaks lets the calls go out as drafted
        tracing.event("rein.draft_check.skipped", {"reason": f"{type(e).__name__}: {e!s:.120}"})
        return Diagnosis(notes=[f"draft_check: internal error ({type(e).__name__}); the calls went out unchecked"])


async def recheck(p: Any, state: TurnState) -> dict[str, Any]:
    """Re-ask the agent with what was wrong with its tool calls planted as a plan: once for a
    malformed call, up to the policy's ``actions.max_rounds`` for a call an action check held."""
    check = state["draft_check"]
    diagnosis = state["diagnosis"]
    merged = diagnosis.model_copy(update={"errors": [*diagnosis.errors, *check.errors]})
    with tracing.guardrail("draft_tool_call", "modify", current=True):
        messages, tools = p.inception.inject(state["messages"], state["tools"], check)
    held = any(d.hold for d in check.errors)
    return {"messages": messages, "tools": tools, "diagnosis": merged, "draft_check": None,
            "rechecked": state.get("rechecked", False) or not all(d.hold for d in check.errors),
            "hold_rounds": state.get("hold_rounds", 0) + held}


async def resolve(p: Any, state: TurnState) -> dict[str, Any]:
    """Answer calls to rein-owned tools inside rein; never show them to the client."""
    draft = state["draft"]
    owned = p.inception.owned_tools(state["request"].tools)
    messages = list(state["messages"]) + [draft.message]
    reported: dict[str, Any] = {}
    for call in draft.message.tool_calls or []:
        if call.function.name not in owned:
            continue
        with tracing.guardrail(f"tool {call.function.name}", "modify", current=True):
            resolution = await p.inception.resolve(call, state["messages"])
            if resolution.incident is not None:  # the reply tells the user it was reported: report it
                p.incidents.report(resolution.incident, p.policy.name)
                tracing.event("rein.incident", resolution.incident.model_dump(exclude_none=True))
                reported.setdefault("incidents", list(state.get("incidents") or [])).append(resolution.incident)
        if resolution.end_turn:
            final = ModelResponse(message=assistant(resolution.reply), model=draft.model,
                                  finish_reason="stop", usage=draft.usage, raw=draft.raw)
            return {**reported, "draft": final, "streamed": False, "messages": messages, "call_chunks": [],
                    "dropped_calls": []}
        messages.append(ToolMessage(tool_call_id=call.id, content=resolution.tool_result))
    return {**reported, "messages": messages}


async def plan_refine(p: Any, state: TurnState) -> dict[str, Any]:
    """Which refiners this text draft needs, in order (most turns: none)."""
    notes: list[str] = []
    ctx = turn_context(state)
    plan = await guarded("plan_refine", p.refinery.plan(ctx, text_of(state["draft"].message)),
                         RefinePlan(reason="planner failed"), notes, state["budget"])
    return {"plan": plan, "notes": notes, "context": ctx}


async def refine(p: Any, state: TurnState) -> dict[str, Any]:
    """The planned refiners, in order, each on the previous revision."""
    draft_text = text_of(state["draft"].message)
    notes: list[str] = []
    ctx = turn_context(state)
    result = await guarded("refine", p.refinery.refine(ctx, draft_text, state["plan"]),
                           Refinement(draft=draft_text, final=draft_text), notes, state["budget"])
    return {"refinement": result, "notes": notes + result.notes, "context": ctx}


async def respond(p: Any, state: TurnState) -> dict[str, Any]:
    """The reply: refined text applied by rule mode, rein-owned and dropped calls taken out, a held
    stream re-emitted, the profile learned off the critical path, the turn's hits recorded."""
    draft = state["draft"]
    final = draft
    refinement = state.get("refinement")
    hits = list(state.get("hits") or [])
    out: dict[str, Any] = {}
    if refinement is not None and refinement.steps:
        refinement, more = sort_refinement(refinement, p.modes)  # a rule that may not act changes nothing
        out["refinement"], hits = refinement, hits + more
    if refinement is not None and refinement.changed:
        final = draft.model_copy(update={"message": assistant(refinement.final, draft.message.tool_calls)})
    final, dropped = _without_owned(p, state, final)
    final, notice = without_dropped(final, state.get("dropped_calls"))  # held past the policy's rounds
    if dropped:
        out["notes"] = [f"resolve: {', '.join(dropped)} still called after {MAX_ROUNDS} rounds; not shown to the client"]
    if state.get("stream") and not state.get("streamed"):
        _send_held(state, final, notice)
    if (p.profiles is not None and p.policy.refiners.enabled and p.policy.refiners.learn_profiles
            and not final.message.tool_calls):
        # Learn from the dialogue off the critical path: a task that runs after the reply goes out.
        p.profiles.remember_later(state["request"].extra.get("user"), state["request"].messages)
    if hits:
        record_hits(hits)
        out["hits"] = hits
    if p.decisions is not None:
        rein_ms = (time.perf_counter() - state.get("started", time.perf_counter())) * 1000 - state.get("upstream_ms", 0.0)
        p.decisions.turn(p.policy, state["request"], hits, final.message, rein_ms)
    return {**out, "final": final}


def _without_owned(p: Any, state: TurnState, final: ModelResponse) -> tuple[ModelResponse, list[str]]:
    """rein-owned tools never reach the client: calls to them still pending when rein stops
    looping (MAX_ROUNDS) are dropped, and a reply left empty says that it could not finish."""
    calls = final.message.tool_calls or []
    owned = p.inception.owned_tools(state["request"].tools) if calls else set()
    dropped = [c.function.name for c in calls if c.function.name in owned]
    if not dropped:
        return final, []
    kept = [c for c in calls if c.function.name not in owned] or None
    text = text_of(final.message) or (None if kept else "I'm sorry, I could not finish that. Please try again.")
    message = assistant(text, kept)
    return final.model_copy(update={"message": message, "finish_reason": "tool_calls" if kept else "stop"}), dropped


def _send_held(state: TurnState, final: ModelResponse, notice: str = "") -> None:
    """A reply held whole goes out in the upstream's own chunks (ids, fields, chunking), with
    the refined text; a reply rein wrote itself (a recovery tool's) in the upstream's shape;
    tool calls held for the action checks as the upstream sent them, less the dropped ones."""
    write = writer()
    if state.get("call_chunks"):
        for c in released_calls(state["call_chunks"], {d.call_id for d in state.get("dropped_calls") or []}, notice):
            write(c)
        return
    held = state.get("held_chunks") or []
    text = final.message.content if isinstance(final.message.content, str) else ""
    chunks = reshape(held, text) if held and not final.message.tool_calls else \
        response_chunks(final, like=held[0] if held else None)
    for c in chunks:
        write(c)
    report = state.get("stream_report")
    if report is not None and state.get("held_at"):
        report.held_ms = (time.perf_counter() - state["held_at"]) * 1000


async def guarded(stage: str, work, fallback, notes: list[str], turn_budget: TurnBudget):
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
