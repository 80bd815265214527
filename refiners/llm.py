"""rein's own model calls for refinement: constrained JSON, a share of the turn's budget
(``policies.budget``: one budget type for the turn and its shares), and a guard that keeps the
previous revision when a reply is empty, malformed, too long or invents values.

    budget = Budget(max_calls=2, deadline=time.monotonic() + 5, call_timeout=3, max_chars=4000)
    verdict = await review(model, budget, "coherence", instructions, context, draft)
"""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from policies.budget import BudgetSpent, TurnBudget as Budget  # noqa: F401  (one budget type; BudgetSpent re-exported)
from policies.messages import SystemMessage, UserMessage
from policies.chat_model import ChatModel, ModelRequest
from refiners.claims import find_claims, same_value


REVIEW_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "feedback": {"type": "string"}, "revision": {"type": "string"}},
    "required": ["ok", "feedback", "revision"],
}


class BadReply(Exception):
    """The model answered with something unusable; the previous revision stands."""


async def ask_json(model: ChatModel, budget: Budget, system: str, prompt: str, schema: dict,
                   max_tokens: int = 320) -> dict:
    timeout = budget.take()
    request = ModelRequest(messages=[SystemMessage(content=system), UserMessage(content=prompt)],
                           response_format={"type": "json_object", "schema": schema},
                           extra={"temperature": 0.0, "max_tokens": max_tokens}, timeout=timeout)
    try:  # the model's `chat` span is its wrapper's (the stage builder wraps rein's model once)
        reply = await asyncio.wait_for(model.complete(request), timeout)
    except asyncio.TimeoutError:
        raise BadReply(f"model call timed out after {timeout:.1f}s") from None
    text = reply.message.content if isinstance(reply.message.content, str) else ""
    try:
        data = json.loads(text)
    except ValueError:
        raise BadReply("model reply is not JSON") from None
    if not isinstance(data, dict):
        raise BadReply("model reply is not a JSON object")
    return data


@dataclass
class Verdict:
    ok: bool
    feedback: str
    revision: str


async def review(model: ChatModel, budget: Budget, aspect: str, instructions: str, context: str,
                 draft: str) -> Verdict:
    system = (f"You review an assistant's reply for {aspect}. {instructions} "
              'Answer with JSON: {"ok": true if the reply needs no change, "feedback": one short sentence, '
              '"revision": the full corrected reply, or "" when ok}.')
    prompt = f"{context}\n\nReply to review:\n{draft}"
    data = await ask_json(model, budget, system, prompt, REVIEW_SCHEMA,
                          max_tokens=min(1024, 64 + len(draft) // 2))
    ok = data.get("ok")
    feedback = data.get("feedback")
    revision = data.get("revision")
    if not isinstance(ok, bool) or not isinstance(feedback, str) or not isinstance(revision, str):
        raise BadReply("model reply lacks ok/feedback/revision")
    return Verdict(ok, feedback.strip()[:300], revision.strip())


def guard(previous: str, revision: str, evidence_texts: list[str], max_chars: int) -> str | None:
    """Why ``revision`` must be rejected, or None. Rejected: empty, over the length budget, not
    prose, or stating an amount, date, time or ID that neither the previous text nor the evidence holds."""
    if not revision.strip():
        return "empty revision"
    if len(revision) > max_chars or len(revision) > 3 * len(previous) + 400:
        return "revision longer than the budget allows"
    if revision.lstrip().startswith(("{", "[")):
        return "revision is not prose"
    known = find_claims(previous) + [c for t in evidence_texts for c in find_claims(t)]
    for c in find_claims(revision):
        if c.kind in ("number", "status"):
            continue
        if not any(k.kind == c.kind and same_value(c.kind, c.value, k.value) for k in known):
            return f"revision states {c.text!r}, which nothing supports"
    return None
