"""The inception cascade: structural detectors first, then (by the trigger) the LLM module;
the plan from the policy's recovery map; injection by the policy's strategy; rein-owned tools.

Example::

    cascade = Cascade(load_policy("default"), model)
    diagnosis = await cascade.diagnose(messages, tools)
    messages, tools = cascade.inject(messages, tools, diagnosis)
"""
from __future__ import annotations

import re
from typing import Any

from inception.actions import ActionChecker
from inception.base import Detection, Diagnosis, ToolResolution
from inception.cache import LRU, prefix_key
from inception.dialogue import Dialogue
from inception.inject import STRATEGIES
from inception.llm import LLMDetector, LLMVerdict
from inception.memo import TextMemo
from inception.structural import Detector, call_problem, structural_detectors
from inception.tools import Toolbox, names_of
from policies.messages import AssistantMessage, Message, ToolCall
from policies.chat_model import ChatModel
from policies.schema import Policy
from policies.telemetry import event, guardrail

MAX_PLANS = 2  # more than two plans at once reads as noise to the agent


class Cascade:
    def __init__(self, policy: Policy, model: ChatModel | None = None, detectors: list[Detector] | None = None):
        """``detectors``: your own, run after the built-in ones; what they report must be a type of
        the policy's taxonomy (its plan and recovery tool apply). ``inception.build`` adds the
        taxonomy entries a plug-in declares and refuses one that reports a type nobody defines."""
        self.policy = policy
        settings = policy.inception
        self.labels = {e.label for e in policy.taxonomy}
        self.detectors = structural_detectors(self.labels, settings.loop_repeats) if settings.structural else []
        self.detectors += detectors or []
        self.llm = LLMDetector(policy, model) if settings.llm and model is not None and policy.taxonomy else None
        # One alternation: a clean turn pays one regex search, not one per signal.
        patterns = [f"(?:{p})" for e in policy.taxonomy for p in e.signals]
        self.signal = re.compile("|".join(patterns), re.I) if patterns else None
        self._signalled: TextMemo[bool] = TextMemo(500_000)  # by the user's text: every step of its tool loop asks
        self.toolbox = Toolbox(policy)
        self.cache: LRU[LLMVerdict] = LRU(settings.cache_size)
        self.actions = ActionChecker(policy.actions) if policy.actions.enabled else None
        self._covers: dict[frozenset[str], bool] = {}  # checks_calls by tool set

    # ---- diagnose -------------------------------------------------------------------------
    async def diagnose(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> Diagnosis:
        d = Dialogue.of(messages, tools)
        d.owned = self.toolbox.owned_of(d.tools.keys())  # (the tool list read once, by Dialogue.of)
        found: list[Detection] = []
        notes: list[str] = []
        for detector in self.detectors:
            with guardrail(detector.name) as span:
                hits = detector.detect(d)
                kept = [h for h in hits if h.label in self.labels or h.type in self.labels]
                if len(kept) != len(hits):  # said, not dropped in silence: the policy has no plan for it
                    stray = sorted({h.label for h in hits} - {h.label for h in kept})
                    notes.append(f"{detector.name}: reported {', '.join(stray)}, not in the taxonomy: ignored")
                    span.add_event("rein.detection.unknown_type", {"types": stray})
                _decide(span, kept)
            found += kept
        calls = 0
        if self.llm is not None and self._should_ask(d, found):
            verdict = await self._ask(messages, tools, d)
            calls, notes = verdict.calls, notes + list(verdict.notes)
            known = {h.label for h in found}
            found += [h for h in verdict.detections if h.label not in known]
            model_plan = verdict.plan
        else:
            model_plan = None
        return self._diagnosis(found, model_plan, calls, notes)

    def _should_ask(self, d: Dialogue, found: list[Detection]) -> bool:
        settings = self.policy.inception
        if self.policy.budgets.max_calls_per_turn < 1:
            return False
        if settings.trigger == "on_signal":
            return not found and self.signal is not None and self._signalled.get(d.last_user, self._signals)
        return True

    def _signals(self, text: str) -> bool:
        return self.signal is not None and self.signal.search(text) is not None

    async def _ask(self, messages: list[Message], tools: list[dict[str, Any]] | None, d: Dialogue) -> LLMVerdict:
        # every_user_turn and on_signal diagnose a user turn once: the key stops at the user's
        # message, so the tool loop that follows reuses it. always keys on the whole request.
        if self.policy.inception.trigger == "always":
            key = prefix_key(messages, tools)
        else:
            key = prefix_key(messages[: d.turn_start + 1], tools, d.turn_key())
        cached = self.cache.get(key)
        if cached is not None:
            return LLMVerdict(cached.detections, cached.plan, 0, [])
        with guardrail("inception_llm", current=True) as span:
            verdict = await self.llm.diagnose(d)
            _decide(span, verdict.detections)
            for note in verdict.notes:
                span.add_event("rein.inception.fail_open", {"reason": note})
        if not verdict.notes:  # a failed call is not a diagnosis worth remembering
            self.cache.put(key, verdict)
        return verdict

    def _diagnosis(self, found: list[Detection], model_plan: str | None, calls: int, notes: list[str]) -> Diagnosis:
        plans: list[str] = []
        tools: list[str] = []
        for det in found:
            entry = self.policy.error_type(det.type, det.subtype) or self.policy.error_type(det.type)
            if entry is None:
                continue
            text = ""
            if det.source == "llm" and model_plan and (self.policy.inception.plan_from == "model" or not entry.plan):
                text = model_plan
            elif entry.plan:
                text = entry.plan.format(evidence=det.evidence or "see the dialogue", type=det.type,
                                         subtype=det.subtype or "", tool=entry.recovery_tool or "")
            if text and text not in plans and len(plans) < MAX_PLANS:
                plans.append(text)
                if entry.recovery_tool:
                    tools.append(entry.recovery_tool)
        plan = None
        if plans:
            plan = plans[0] if len(plans) == 1 else " ".join(f"({i}) {p}" for i, p in enumerate(plans, 1))
        return Diagnosis(errors=found, plan=plan, recovery_tools=list(dict.fromkeys(tools)),
                         model_calls=calls, notes=notes)

    # ---- inject and own tools -------------------------------------------------------------
    def inject(self, messages: list[Message], tools: list[dict[str, Any]] | None,
               diagnosis: Diagnosis) -> tuple[list[Message], list[dict[str, Any]] | None]:
        names = list(diagnosis.recovery_tools)
        if diagnosis.plan:
            strategy = self.policy.inception.strategy
            if strategy == "think_trace":
                messages = STRATEGIES[strategy](messages, diagnosis.plan, self.toolbox.think)
                names.insert(0, self.toolbox.think)
            else:
                messages = STRATEGIES[strategy](messages, diagnosis.plan)
        return messages, self.toolbox.add(tools, names)

    def owned_tools(self, client_tools: list[dict[str, Any]] | None) -> set[str]:
        return self.toolbox.owned(client_tools)

    async def resolve(self, call: ToolCall, messages: list[Message] | None = None) -> ToolResolution:
        return await self.toolbox.resolve(call, messages)

    def check_draft(self, messages: list[Message], tools: list[dict[str, Any]] | None,
                    draft: AssistantMessage, now: str | None = None) -> Diagnosis:
        """The draft's calls: malformed ones (re-asked once), then the pack's action rules and the
        built-in action checks (``Detection.hold``: the call must not reach the client; the plan
        names the rule and its evidence). ``now``: the request's time header, when the pack reads one."""
        if not draft.tool_calls:
            return Diagnosis()
        found: list[Detection] = []
        action_plan = None
        try:
            owned = self.toolbox.owned(tools)
            if self.policy.inception.check_drafts:
                d = Dialogue.of([*messages, draft], tools, owned)
                with guardrail("draft_tool_call") as span:
                    found = [p for rec in d.latest_calls() if (p := call_problem(rec, d)) is not None
                             and (p.label in self.labels or p.type in self.labels)]
                    _decide(span, found)
            if self.actions is not None:
                with guardrail("action_check") as span:
                    acted = self.actions.check(messages, draft, owned, now)
                    _decide(span, acted)
                found += acted
                action_plan = self.actions.plan(acted)
        except Exception as e:  # runs outside the pipeline's guard: never fail the turn over a check
            event("rein.draft_check.skipped", {"reason": f"{type(e).__name__}: {e!s:.120}"})
            return Diagnosis(errors=found, notes=[f"draft_check: {type(e).__name__}"])
        diagnosis = self._diagnosis(found, None, 0, [])
        if action_plan:
            plan = action_plan if not diagnosis.plan else f"{action_plan}\n{diagnosis.plan}"
            diagnosis = diagnosis.model_copy(update={"plan": plan})
        return diagnosis

    def check_reply(self, messages: list[Message], draft: AssistantMessage) -> Diagnosis:
        """A text draft that says an action was done (cancelled, added, sent ...) while no write
        succeeded in this turn: ``action:builtin/claimed_action`` (``flag`` mode by default, so
        ``hold`` is False; in ``plan`` mode, the reply should be re-asked with the plan)."""
        if self.actions is None or draft.tool_calls:
            return Diagnosis()
        try:
            found = self.actions.check_reply(messages, draft)
        except Exception as e:  # never fail the turn over a check
            event("rein.reply_check.skipped", {"reason": f"{type(e).__name__}: {e!s:.120}"})
            return Diagnosis(notes=[f"reply_check: {type(e).__name__}"])
        return Diagnosis(errors=found, plan=self.actions.plan(found))

    def prepare(self, messages: list[Message], tools: list[dict[str, Any]] | None, now: str | None = None) -> None:
        """The dialogue as the action checks read it, read while the agent writes its draft."""
        if self.actions is not None:
            # the pipeline checks the draft next on this very list, nothing changing its messages
            self.actions.prepare(messages, self.toolbox.owned(tools), now, hand_over=True)

    def checks_calls(self, tools: list[dict[str, Any]] | None) -> bool:
        # Only the action checks hold a call; the malformed-call check re-asks a draft not yet sent.
        # Asked on every agent call of a turn with tools: answered once per tool set (matching each
        # name against the pack's globs and write verbs cost ~20-80 us for 14 tools).
        if self.actions is None:
            return False
        names = frozenset(names_of(tools))
        known = self._covers.get(names)
        if known is None:
            if len(self._covers) >= 1024:  # a bound, not an LRU: tool sets repeat, few are new
                self._covers.clear()
            known = self._covers[names] = self.actions.covers(sorted(names))
        return known


def _decide(span: Any, found: list[Any]) -> None:
    if found:
        span.set_attribute("gen_ai.security.decision.type", "warn")
        # (a detection's label; str() only for what has none: a default argument is always evaluated)
        span.set_attribute("rein.detections", [d.label if hasattr(d, "label") else str(d) for d in found])
