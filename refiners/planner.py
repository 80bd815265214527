"""The planner: which refiners this turn needs, in which order, and why. Cheap rules first
(each refiner's ``check`` runs with no model); the model only for what the rules leave open.

Order when several run: the refinery's, which is the policy's ``refiners.refiners`` (default
``BUILTIN_REFINERS``: factuality to get the facts right, coherence for the thread, persona last so
it shapes the final wording), then plug-ins the policy does not name."""
from __future__ import annotations

import re

from policies.schema import RefinerSettings
from refiners.base import RefinePlan, Refiner
from refiners.claims import find_claims
from refiners.llm import BadReply, BudgetSpent, ask_json
from refiners.turn import RefinerTurn

_THANKS = re.compile(r"^\s*(?:thanks?|thank you|ok(?:ay)?|great|perfect|cool|got it|bye|goodbye|cheers)\b", re.I)


def is_acknowledgement(turn: RefinerTurn, draft: str) -> bool:
    short = len(draft.split()) <= 12 and not find_claims(draft)
    return short and (not turn.questions() or bool(_THANKS.match(turn.last_user)))


def settled_by_the_draft(turn: RefinerTurn, draft: str) -> RefinePlan | None:
    """The plan when the draft alone settles it (empty, or a short acknowledgement): decided before
    anything reads the dialogue's evidence."""
    if not draft.strip():
        return RefinePlan(reason="empty or tool-call draft: never refined")
    if is_acknowledgement(turn, draft):
        return RefinePlan(reason="short acknowledgement: nothing to refine")
    return None


async def plan(turn: RefinerTurn, draft: str, refiners: dict[str, Refiner], settings: RefinerSettings) -> RefinePlan:
    settled = settled_by_the_draft(turn, draft)
    if settled is not None:
        return settled
    names = list(refiners)  # in running order
    if settings.planner == "fixed":
        return RefinePlan(refiners=names, reason="fixed chain: every refiner, every turn", thorough=True)
    chosen, undecided, reasons = [], [], []
    for name in names:
        check = refiners[name].check(turn, draft)
        if check.skip_reason:
            reasons.append(f"{name}: skip, {check.skip_reason}")
        elif check.findings:
            chosen.append(name)
            reasons.append(f"{name}: {'; '.join(check.findings[:3])}")
        elif check.undecided:
            undecided.append(name)
        else:
            reasons.append(f"{name}: skip, nothing found")
    calls = 0
    ask = undecided if settings.planner == "rules" else [n for n in names if n not in chosen and
                                                         not refiners[n].check(turn, draft).skip_reason]
    if ask and turn.can_consult():
        before = turn.budget.calls
        picked, why = await _ask_planner(turn, draft, ask)
        calls = turn.budget.calls - before
        chosen += picked
        reasons.append(f"model planner: {why}")
    elif undecided:
        reasons.append(f"undecided, skipped without a model: {', '.join(undecided)}")
    ordered = [n for n in names if n in chosen]
    return RefinePlan(refiners=ordered, reason="; ".join(reasons), model_calls=calls)


async def _ask_planner(turn: RefinerTurn, draft: str, candidates: list[str]) -> tuple[list[str], str]:
    schema = {"type": "object", "required": ["refiners", "reason"], "properties": {
        "refiners": {"type": "array", "items": {"type": "string", "enum": candidates}},
        "reason": {"type": "string"}}}
    system = ("You decide which reviews an assistant's reply needs before it is sent. Reviews: "
              "factuality (claims match the tool results), coherence (answers the last question, agrees with "
              "earlier turns), persona (fits the user's profile). Pick only the reviews that are needed; "
              'often none. Answer JSON: {"refiners": [...], "reason": "..."}.')
    prompt = f"Dialogue:\n{turn.dialogue(1500)}\n\nReply:\n{draft}\n\nCandidates: {', '.join(candidates)}"
    try:
        data = await ask_json(turn.model, turn.budget, system, prompt, schema, max_tokens=80)
    except (BudgetSpent, BadReply) as e:
        turn.notes.append(f"planner: {e}")
        return [], f"unavailable ({e}); rules stand"
    except Exception as e:  # fail open: the rules' plan stands
        turn.notes.append(f"planner: {type(e).__name__}")
        return [], f"failed ({type(e).__name__}); rules stand"
    picked = data.get("refiners")
    if not isinstance(picked, list) or not all(isinstance(p, str) for p in picked):
        return [], "malformed reply; rules stand"
    picked = [p for p in dict.fromkeys(picked) if p in candidates]
    reason = data.get("reason") if isinstance(data.get("reason"), str) else ""
    return picked, (reason.strip()[:160] or ("chose " + ", ".join(picked) if picked else "none needed"))
