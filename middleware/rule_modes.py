"""What each rule's mode lets a stage change (policies.rules), and what rein saw either way.

The pipeline asks here after each stage that found something: a detection whose rule acts keeps
its plan; one in ``flag`` is reported (``x-rein-diagnosis``) and plants nothing; one in ``shadow``
plants nothing and is reported as what rein would have done (``x-rein-would-*``); one ``off`` is
dropped. A refinement stands only when every rule behind its changes acts; otherwise the reply goes
out as the agent wrote it. Every rule that fired, in any mode but off, becomes a ``Hit``: the
turn's record for headers, spans and the decision log (middleware/decisions).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from inception.base import Diagnosis
from policies.rules import RuleModes, factuality_rule, refiner_rule
from policies.telemetry import event
from refiners.base import Refinement, RefinerStep
from refiners.claims import find_claims


@dataclass(slots=True)
class Hit:
    rule: str
    mode: str                     # act | flag | shadow
    stage: str                    # diagnose | refine | action
    evidence: str = ""            # what rein read (a tool result, the user's turn): message content
    plan: str | None = None       # the plan planted, or that would have been
    before: str | None = None     # refine: the draft ...
    after: str | None = None      # ... and what the refiners made of it
    call_id: str | None = None    # action: the tool call held, or that would have been
    drafted: Any = None           # action: the agent's message with that call, as drafted


def sort_diagnosis(diagnosis: Diagnosis, modes: RuleModes, stage: str = "diagnose") -> tuple[Diagnosis, list[Hit]]:
    """The diagnosis as the pipeline may act on it, and a hit per rule that fired (off: none)."""
    if not diagnosis.errors:
        return diagnosis, []
    hits: list[Hit] = []
    reported, acting = [], []
    for det in diagnosis.errors:
        rule = det.rule_id
        mode = modes.mode(rule)
        if mode == "off":
            continue
        hits.append(Hit(rule, mode, "action" if rule.startswith("action:") else stage, det.evidence,
                        diagnosis.plan, call_id=det.call_id))
        if mode == "act":
            acting.append(det)
        elif mode == "flag":
            reported.append(det.model_copy(update={"hold": False}) if det.hold else det)
    if len(acting) == len(diagnosis.errors):
        return diagnosis, hits
    # Nothing planted unless a rule that acts found it; when some act, their plan stands.
    update: dict[str, Any] = {"errors": acting + reported}
    if not acting:
        update.update(plan=None, recovery_tools=[])
    return diagnosis.model_copy(update=update), hits


_FIXED = re.compile(r"(?:^|; )(?:fixed|flagged) (.+?) → ")


def step_rules(step: RefinerStep) -> list[str]:
    """The rule ids behind a refiner step's change or flags: factuality's by the kind of value
    it fixed (``refine:factuality/amount``), any other refiner's ``refine:<name>/revise``."""
    if step.name == "factuality":
        rules = []
        for claimed in _FIXED.findall(step.feedback):
            claims = find_claims(claimed)
            rules.append(factuality_rule(claims[0].kind if claims else "name"))
        if rules:
            return list(dict.fromkeys(rules))
    return [refiner_rule(step.name)]


def sort_refinement(refinement: Refinement, modes: RuleModes) -> tuple[Refinement, list[Hit]]:
    """The refinement as it may stand, and a hit per rule behind a change or a flag."""
    hits: list[Hit] = []
    moded: list[str] = []
    for step in refinement.steps:
        if not (step.changed or step.flags):
            continue
        for rule in step_rules(step):
            mode = modes.mode(rule) if step.changed else ("off" if modes.mode(rule) == "off" else "flag")
            moded.append(mode)
            if mode != "off":
                hits.append(Hit(rule, mode, "refine", step.feedback, before=refinement.draft, after=refinement.final))
    if not refinement.changed or all(m == "act" for m in moded):
        return refinement, hits
    # A rule that may not change the reply is behind this change: the draft goes out as written.
    kept = [s.model_copy(update={"changed": False}) if s.changed else s for s in refinement.steps]
    return refinement.model_copy(update={"final": refinement.draft, "steps": kept}), hits


def record(hits: list[Hit]) -> None:
    """One span event per hit on the current span (the rule and its mode; no content)."""
    for hit in hits:
        event("rein.rule", {"rein.rule.id": hit.rule, "rein.rule.mode": hit.mode, "rein.rule.stage": hit.stage})


def headers(hits: list[Hit]) -> dict[str, str]:
    """``x-rein-rules`` (rule=mode for every rule that fired) and what shadow mode kept from
    happening: ``x-rein-would-plan``, ``x-rein-would-refine``, ``x-rein-would-hold`` (rule ids)."""
    if not hits:
        return {}
    out = {"x-rein-rules": ",".join(dict.fromkeys(f"{h.rule}={h.mode}" for h in hits))}
    would = {"diagnose": [], "refine": [], "action": []}
    for h in hits:
        if h.mode == "shadow":
            would[h.stage].append(h.rule)
    for stage, name in (("diagnose", "plan"), ("refine", "refine"), ("action", "hold")):
        if would[stage]:
            out[f"x-rein-would-{name}"] = ",".join(dict.fromkeys(would[stage]))
    return out
