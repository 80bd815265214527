"""The adaptive refinery: the pipeline's gate, planner and refine loop over the three refiners.

    refinery = AdaptiveRefinery(policy.refiners, policy.budgets, model)
    if refinery.may_refine(ctx):                       # before the draft: may a refiner change it?
        check = refinery.sentence_check(ctx)           # rules only: check a stream sentence by sentence
        plan = await refinery.plan(ctx, draft)
        result = await refinery.refine(ctx, draft, plan)   # result.final, result.steps
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import time

from policies.messages import text_of
from policies.chat_model import ChatModel
from policies.budget import TurnBudget
from policies.schema import Budgets, RefinerSettings
from policies.telemetry import content_enabled, guardrail
from refiners import planner
from refiners.base import RefinePlan, Refinement, Refiner, RefinerStep, Refinery, TurnContext
from refiners.coherence import CoherenceRefiner
from refiners.factuality import FactualityRefiner
from refiners.llm import Budget
from refiners.persona import PersonaRefiner
from refiners.stream_check import SentenceCheck, sentence_refiner
from refiners.turn import RefinerTurn

# Past this much dialogue text the turn's evidence is built in a worker thread. The GIL still runs
# one thing at a time, but the event loop gets its turn every switch interval (5 ms), so /healthz
# and other requests are answered while a big tool result is read. Below it the hop costs more
# than it saves.
OFFLOAD_CHARS = 32_000
# Where a dialogue that big is read ahead (Refinery.prepare), while the agent writes.
_READER = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="rein-read-ahead")


def _dialogue_chars(ctx: TurnContext) -> int:
    return sum(len(text_of(m)) for m in ctx.messages) + sum(map(len, ctx.documents))


class AdaptiveRefinery(Refinery):
    def __init__(self, settings: RefinerSettings, budgets: Budgets, model: ChatModel | None = None,
                 refiners: dict[str, Refiner] | None = None, plugins: dict[str, Refiner] | None = None,
                 order: list[str] | None = None):
        """``refiners``: exactly these, in this order (tests); else the built-ins and ``plugins``
        in ``order`` (``refiners.build`` checks the names). Without the model only the
        deterministic factuality pass of the built-ins runs (the structural policy); plug-ins
        run either way (``turn.llm`` says whether they may ask the model)."""
        self.settings = settings
        self.budgets = budgets
        self.model = model
        self.llm = settings.llm and model is not None
        if refiners is None:
            # Without the model only the deterministic factuality pass of the built-ins is worth
            # running (the structural policy); persona and coherence are then not built at all.
            every: dict[str, Refiner] = {
                "factuality": FactualityRefiner(settings.deterministic_factuality, settings.factuality_mode)}
            if settings.llm:
                every |= {"persona": PersonaRefiner(), "coherence": CoherenceRefiner()}
            every |= plugins or {}
            wanted = order if order is not None else list(settings.refiners) + list(plugins or {})
            refiners = {n: every[n] for n in dict.fromkeys(wanted) if n in every}
        self.refiners = refiners
        # Read once, from what each refiner declares: how it checks a stream (None: it reads the
        # whole reply, and a turn it applies to is held whole).
        self.streaming = {n: sentence_refiner(r) for n, r in refiners.items()}

    def _budget(self, ctx: TurnContext, spent: int = 0) -> TurnBudget:
        """The turn's budget, read only: the pipeline's (it records what each stage spent), or, for
        a caller without one, a budget that has spent ``ctx.model_calls_used`` and ``spent``."""
        return ctx.budget if ctx.budget is not None else TurnBudget(self.budgets, ctx.model_calls_used + spent)

    def _turn(self, ctx: TurnContext, max_calls: int, seconds: float, thorough: bool = False) -> RefinerTurn:
        budget = Budget(max_calls=max(0, max_calls), deadline=time.monotonic() + seconds,
                        call_timeout=self.budgets.model_timeout_s, max_chars=self.budgets.max_revision_chars)
        return RefinerTurn(ctx, self.model, budget, llm=self.llm, thorough=thorough)

    def may_refine(self, ctx: TurnContext) -> bool:
        if not self.settings.enabled or not self.refiners:
            return False
        turn = self._turn(ctx, 0, 1.0)
        return any(r.applies(turn) for r in self.refiners.values())

    def sentence_check(self, ctx: TurnContext) -> SentenceCheck | None:
        """A stream's per-sentence check when only rules may change this turn's reply; None when a
        refiner that applies reads the whole reply, or may ask rein's model (the stream is held whole)."""
        if not self.settings.enabled or not self.refiners:
            return None
        turn = self._turn(ctx, 0, self.budgets.model_timeout_s)
        # Whether a refiner would consult the model is judged as the refine loop would run it.
        as_refined = self._turn(ctx, 0, self.budgets.model_timeout_s, thorough=self.settings.planner == "fixed")
        for name, refiner in self.refiners.items():
            if not refiner.applies(turn):
                continue
            streaming = self.streaming[name]
            if streaming is None or streaming.consults(as_refined):
                return None
        # Past max_revision_chars a whole draft is not read (plan()); a stream is checked that far.
        return SentenceCheck(turn, {n: s for n, s in self.streaming.items() if s is not None},
                             offload=_dialogue_chars(ctx) > OFFLOAD_CHARS, max_chars=self.budgets.max_revision_chars)

    def prepare(self, ctx: TurnContext) -> None:
        """The dialogue's evidence, read before the draft exists and kept in ``ctx.facts``, where
        the plan and the refine loop find it. The pipeline calls this while the agent writes its
        reply: most of a slow turn's work is reading tool results for the first time, and the
        agent's answer takes far longer. Nothing is read when no refiner applies. Past
        ``OFFLOAD_CHARS`` the reading goes to a worker thread (``ctx.facts.reading``), off the event
        loop, and ``plan`` waits for it."""
        if not self.settings.enabled or not self.refiners:
            return
        turn = self._turn(ctx, 0, self.budgets.model_timeout_s)
        if _dialogue_chars(ctx) > OFFLOAD_CHARS:
            reading = ctx.facts.reading  # (a stream's sentence check may be reading it already)
            if reading is None or reading.done():
                ctx.facts.reading = _READER.submit(self._read_ahead, turn)
            return
        self._read_ahead(turn)

    def _read_ahead(self, turn: RefinerTurn) -> None:
        # Every refiner's gate, not the first that applies: each reads what it asks (the profile, the evidence).
        # The evidence and its joined lookups: ~60 us of CPU a turn, also on turns that end in a tool
        # call, for a lower tail of `default`'s checks (paired, 760 airline replies x 4: on-path p99
        # 2.06 -> 1.93 ms; structural's unchanged).
        if any([r.applies(turn) for r in self.refiners.values()]):  # (a list: every gate asked)
            turn.evidence.warm()  # kept in ctx.facts

    async def plan(self, ctx: TurnContext, draft: str) -> RefinePlan:
        if not self.settings.enabled or not self.refiners:
            return RefinePlan(reason="refinement disabled")
        if len(draft) > self.budgets.max_revision_chars:
            # _step keeps no revision longer than this: reading the draft would be work thrown away.
            return RefinePlan(reason=f"draft of {len(draft)} characters is over max_revision_chars "
                                     f"({self.budgets.max_revision_chars}): not read, not refined")
        # The gate and the plan read one evidence (ctx.facts): building it is the costly part.
        budget = self._budget(ctx)
        turn = self._turn(ctx, budget.calls_left(), self.budgets.model_timeout_s)
        settled = planner.settled_by_the_draft(turn, draft)  # before the gate, which builds the evidence
        if settled is not None:
            return settled
        if _dialogue_chars(ctx) > OFFLOAD_CHARS:
            if ctx.facts.reading is not None:  # read ahead in a worker thread while the agent wrote
                with contextlib.suppress(Exception):  # (failed: read below, and met here if it fails again)
                    await asyncio.wrap_future(ctx.facts.reading)
            if not ctx.facts.ready(ctx):  # (read ahead: the gates asked there read the profile too)
                await asyncio.to_thread(lambda: (turn.evidence, turn.profile))  # kept in ctx.facts
        if not any(r.applies(turn) for r in self.refiners.values()):
            return RefinePlan(reason="nothing to refine against: no tool results, facts, profile or earlier turns")
        result = await planner.plan(turn, draft, self.refiners, self.settings)
        if turn.notes:
            result.reason += "; " + "; ".join(turn.notes)
        return result

    async def refine(self, ctx: TurnContext, draft: str, plan: RefinePlan) -> Refinement:
        """Run the planned refiners in order, each on the previous revision. Past the wall clock or
        the call budget the best revision so far is returned (fail open)."""
        wall = self.budgets.refine_wall_s
        grace = min(0.5, wall * 0.1)  # finish before the pipeline's own timer would drop everything
        budget = self._budget(ctx, plan.model_calls)  # the pipeline's already holds the plan's calls
        turn = self._turn(ctx, budget.calls_left(), wall - grace, thorough=plan.thorough)
        text, steps, notes = draft, [], []
        for name in plan.refiners:
            refiner = self.refiners.get(name)
            if refiner is None:
                notes.append(f"refine: unknown refiner {name!r} skipped")
                continue
            if turn.budget.remaining() <= 0:
                notes.append(f"refine: wall-clock budget spent before {name}; kept the best revision so far")
                break
            text, step = await self._step(refiner, turn, text)
            steps.append(step)
            if step.feedback.startswith("over budget"):
                notes.append(f"refine: {name} over the wall-clock budget; kept the best revision so far")
                break
        return Refinement(draft=draft, final=text, steps=steps, model_calls=plan.model_calls + turn.budget.calls,
                          plan_reason=plan.reason, notes=notes + turn.notes)

    async def _step(self, refiner: Refiner, turn: RefinerTurn, text: str) -> tuple[str, RefinerStep]:
        started = time.perf_counter()
        calls = turn.budget.calls
        flags: list[str] = []
        with guardrail(refiner.name, current=True) as span:
            try:
                revision = await asyncio.wait_for(refiner.revise(turn, text), max(0.01, turn.budget.remaining()))
                new, feedback, flags = revision.text, revision.feedback, list(revision.flags)
                if not new.strip() or len(new) > self.budgets.max_revision_chars:
                    new, feedback = text, f"{feedback}; revision empty or too long: kept the previous revision"
            except asyncio.TimeoutError:
                new, feedback = text, "over budget: kept the previous revision"
            except Exception as e:  # one broken refiner must not break the reply
                new, feedback = text, f"failed ({type(e).__name__}: {e!s:.80}): kept the previous revision"
                turn.notes.append(f"{refiner.name}: {type(e).__name__}")
            changed = new != text
            span.set_attribute("gen_ai.security.decision.type", "modify" if changed else "warn" if flags else "allow")
            if flags:  # the values themselves are message content: only with the operator's opt-in
                span.set_attribute("rein.refiner.flag_count", len(flags))
                if content_enabled():
                    span.set_attribute("rein.refiner.flags", flags[:10])
            span.set_attribute("rein.refiner.model_calls", turn.budget.calls - calls)
            if content_enabled():
                span.add_event("rein.refiner.feedback", {"feedback": feedback[:300]})
        step = RefinerStep(name=refiner.name, changed=changed, feedback=feedback, flags=flags,
                           model_calls=turn.budget.calls - calls, ms=(time.perf_counter() - started) * 1000)
        return new, step
