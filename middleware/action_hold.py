"""What the pipeline does with the check of a tool-call draft (``Inception.check_draft``).

A finding with ``hold`` (an action rule in ``plan`` mode) keeps its call from the client: the agent
is re-asked with the plan in its reasoning, at most the policy's ``actions.max_rounds`` times, and
then the held calls are dropped and the reply says so in plain words. A malformed call (a finding
of the structural draft check) is re-asked once, then goes out as the agent wrote it (fail open).
An action finding without ``hold`` (``flag`` mode) is only reported. The calls nobody held go out.

    update = act_on(check, draft, state, modes, policy.actions.max_rounds)  # by rule mode, then judge:
    final, notice = without_dropped(final, state["dropped_calls"])  # draft_check, held/dropped/flagged_calls
"""
from __future__ import annotations

from typing import Any

from inception.base import Detection, Diagnosis
from middleware.rule_modes import sort_diagnosis
from policies.chat_model import ModelResponse
from policies.messages import assistant, text_of
from policies.telemetry import guardrail


def is_action(d: Detection) -> bool:
    """An operator action rule or a built-in action check (``action:...``), not a malformed call."""
    return d.rule_id.startswith("action:")


def rules(findings: list[Detection]) -> str:
    """The header value for findings: their rule ids, in order, once each."""
    return ",".join(dict.fromkeys(d.rule_id for d in findings))


def act_on(found: Diagnosis, draft: ModelResponse, state: dict[str, Any], modes: Any, rounds: int,
           sent: bool = False) -> dict[str, Any]:
    """Each finding by its rule's mode (act, flag, shadow: ``middleware.rule_modes``; every rule that
    fired is a ``Hit`` for the decision log), then what is left by ``judge``. ``sent``: the client
    already has the draft (a streamed call under shadow): findings are reported, nothing re-asked."""
    check, hits = sort_diagnosis(found, modes, "action")
    out: dict[str, Any] = {}
    if hits:
        for hit in hits:
            hit.drafted = draft.message
        out["hits"] = [*(state.get("hits") or []), *hits]
    if sent:
        check = check.model_copy(update={"errors": [d.model_copy(update={"hold": False})
                                                    for d in check.errors if is_action(d)]})
    if check.found or check.notes:
        out.update(judge(check, draft, {**state, **out}, rounds))
    return out


def judge(check: Diagnosis, draft: ModelResponse, state: dict[str, Any], rounds: int) -> dict[str, Any]:
    """The state updates for a draft whose check found something: ``draft_check`` (re-ask with it),
    ``held_calls``/``flagged_calls`` (this turn's, so far), ``dropped_calls`` and ``notes``."""
    ids = [c.id for c in draft.message.tool_calls or []]
    held = [n for d in check.errors if d.hold for n in _named(d, ids)]
    flagged = [d for d in check.errors if not d.hold and is_action(d)]
    malformed = [d for d in check.errors if not d.hold and not is_action(d)]
    out: dict[str, Any] = {}
    notes = list(check.notes)  # this check's own: the state appends them
    if flagged:
        _span("flagged_tool_call", "warn", flagged)
        out["flagged_calls"] = [*(state.get("flagged_calls") or []), *flagged]
    if held:
        out["held_calls"] = [*(state.get("held_calls") or []), *held]
        done = state.get("hold_rounds", 0)
        if done < rounds:
            _span("held_tool_call", "deny", held, done + 1)
            plan = check.plan if check.plan else hold_plan(held, draft)
            if done:  # said again in other words: a repeated plan would repeat its think call's id
                plan += f" (Held again: re-ask {done + 1} of {rounds}; the next such call is dropped.)" \
                    if done + 1 == rounds else f" (Held again: re-ask {done + 1} of {rounds}.)"
            out["draft_check"] = check.model_copy(update={"errors": held + malformed, "plan": plan})
            return out
        if draft.message.tool_calls:
            _span("dropped_tool_call", "deny", held)
            out["dropped_calls"] = held
            notes.append(f"actions: {rules(held)} still broken after {rounds} re-asks: the call was dropped")
        else:  # a reply held for its words: nothing to drop, it goes out as the agent wrote it
            notes.append(f"actions: {rules(held)} still found after {rounds} re-asks: the reply went out as written")
    elif malformed and not state.get("rechecked"):
        out["draft_check"] = check.model_copy(update={"errors": malformed})
        return out
    if malformed:  # asked once already: fail open, the call goes out as the agent wrote it
        notes.append(f"draft_check: still {Diagnosis(errors=malformed).header()} after a re-ask")
    if notes:
        out["notes"] = notes
    return out


def held_alone(inception: Any, messages: list[Any], tools: list[dict[str, Any]] | None, call: Any) -> list[Detection]:
    """The findings that hold ``call`` checked on its own, against ``messages`` before it: the last
    check for a call about to run that rein may not have seen drafted (e.g. edited by a human in the
    loop after the model call). Empty when no action check covers ``tools``."""
    if not inception.checks_calls(tools):
        return []
    found = [d for d in inception.check_draft(messages, tools, assistant(None, [call])).errors if d.hold]
    if found:
        _span("held_tool_call", "deny", found)
    return found


def replayed(inception: Any, messages: list[Any], tools: list[dict[str, Any]] | None,
             start: int = 0) -> list[tuple[int, Detection]]:
    """(index, finding) for the action rules broken by each assistant message from ``start``, each
    checked against the dialogue before it as rein checks a draft (held or flagged alike): the
    simulator's process score, and the calls a wrapped graph ran inside its own run."""
    out = []
    for i in range(start, len(messages)):
        m = messages[i]
        if getattr(m, "role", None) != "assistant":
            continue
        found = inception.check_draft(messages[:i], tools, m) if m.tool_calls else inception.check_reply(messages[:i], m)
        out += [(i, d) for d in found.errors if is_action(d)]
    return out


def refusal(call_name: str, held: list[Detection]) -> str:
    """What a tool runner is told instead of running a held call."""
    reasons = "; ".join(dict.fromkeys(d.evidence or d.rule_id for d in held))
    return f"Not carried out: {call_name} breaks {rules(held)} ({reasons}). Do not repeat it as it was."


def hold_plan(held: list[Detection], draft: ModelResponse) -> str:
    """A plan for held calls when the check wrote none: which call, which rule, the evidence."""
    names = {c.id: c.function.name for c in draft.message.tool_calls or []}
    parts = [f"The call {names.get(d.call_id, 'you drafted')} was not made: it breaks {d.rule_id}"
             + (f" ({d.evidence})" if d.evidence else "") for d in held]
    return "; ".join(parts) + ". Do not repeat it as it was: fix what the rule asks, or tell the user why it cannot be done."


def without_dropped(final: ModelResponse, dropped: list[Detection] | None) -> tuple[ModelResponse, str]:
    """``final`` without the dropped calls, its text saying which were not made and why; and that
    added text (what a held stream releases in their place)."""
    if not dropped:
        return final, ""
    calls = final.message.tool_calls or []
    gone = {d.call_id for d in dropped}
    names = {c.id: c.function.name for c in calls}
    reasons: dict[str, list[str]] = {}
    for d in dropped:
        reasons.setdefault(d.call_id or "", []).append(d.notice or d.evidence or d.rule_id)
    said = " ".join(f"I did not carry out {names.get(i, 'a tool call')}: {'; '.join(dict.fromkeys(r))}."
                    for i, r in reasons.items())
    text = text_of(final.message)
    notice = ("\n\n" if text else "") + said
    kept = [c for c in calls if c.id not in gone] or None
    message = assistant(text + notice, kept)
    return final.model_copy(update={"message": message, "finish_reason": "tool_calls" if kept else "stop"}), notice


def _named(d: Detection, ids: list[str]) -> list[Detection]:
    # A finding that names no call of this draft holds them all: never send a call a rule stopped.
    if d.call_id in ids or not ids:  # (no call at all: a finding on the reply's words)
        return [d]
    return [d.model_copy(update={"call_id": i}) for i in ids]


def _span(name: str, decision: str, findings: list[Detection], round_: int | None = None) -> None:
    with guardrail(name, decision) as span:
        span.set_attribute("rein.rules", [d.rule_id for d in findings])
        span.set_attribute("rein.tool_call_ids", [d.call_id or "" for d in findings])
        if round_ is not None:
            span.set_attribute("rein.round", round_)
