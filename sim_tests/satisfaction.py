"""Simulated user satisfaction per dialogue, 1-5, after "Simulating User Satisfaction for the
Evaluation of Task-oriented Dialogue Systems" (Sun et al.): success alone hides how the user got
there; satisfaction counts what a person minds on the way.

By rules (offline, always): the signals below, read from the transcript. By a judge model (when
one is configured, ``rein sim run ... --judge-model M``): the transcript and the 1-5 scale of the
paper, answered as JSON. Both are kept in the trial record, side by side. Example::

    rules_satisfaction(record)               # Satisfaction(score=2, signals={"repeated_asks": 1, ...})
    await judge_satisfaction(model, record)  # Satisfaction(score=3, source="judge", reason="...")
"""
from __future__ import annotations

import json
import re
from collections import Counter

from policies.messages import SystemMessage, UserMessage, text_of
from policies.chat_model import ChatModel, ModelRequest
from sim_tests.log import Satisfaction, TrialRecord

TROUBLE = r"error|problem|unable|fail|couldn.t|could not|unavailable|timed? ?out|went wrong"
FRUSTRATION = (r"already (?:told|said|asked|gave)|going nowhere|taking forever|forget it|waste of|ridiculous|"
               r"come on|seriously|frustrat|annoy|useless|fed up|give up|###GIVE-UP###")
# The detail an agent's question asks for (asking for the same one twice is a signal).
DETAILS = {"id": r"\bid\b|number", "email": r"e-?mail", "name": r"\bname\b", "address": r"address",
           "reason": r"reason|why", "which": r"\bwhich\b", "confirm": r"confirm|shall i|should i|go ahead"}
EFFICIENT_TURNS = 3  # user turns a task of these domains needs; each beyond it costs a little


def signals(record: TrialRecord) -> dict[str, int]:
    """What the user would mind: the agent asking twice for the same detail, a tool failure shown
    to the user, frustrated turns, turns to success (0 when it failed), giving up."""
    asks: Counter[str] = Counter()
    trouble = frustrated = user_turns = 0
    for m in record.messages:
        text = m.get("content") if isinstance(m.get("content"), str) else ""
        if m.get("role") == "assistant" and text and not m.get("inner"):
            for question in re.findall(r"[^.?!]*\?", text):
                for detail, pattern in DETAILS.items():
                    asks[detail] += bool(re.search(pattern, question, re.I))
            trouble += bool(re.search(TROUBLE, text, re.I))
        elif m.get("role") == "user" and text:
            frustrated += bool(re.search(FRUSTRATION, text, re.I))
            user_turns += not text.strip().startswith("###")
    return {"repeated_asks": sum(n - 1 for n in asks.values() if n > 1), "tool_failure_shown": trouble,
            "frustration_turns": frustrated, "turns_to_success": user_turns if record.status == "passed" else 0,
            "gave_up": int(record.ended_by == "gave_up")}


def rules_satisfaction(record: TrialRecord) -> Satisfaction:
    """5 for a task done without friction, 2 for one not done; each signal takes a point (repeated
    asks and frustration up to two each); giving up is 1."""
    s = signals(record)
    if s["gave_up"]:
        return Satisfaction(score=1, signals=s, reason="the user gave up")
    score = 5 if record.status == "passed" else 2
    score -= min(2, s["repeated_asks"]) + min(1, s["tool_failure_shown"]) + min(2, s["frustration_turns"])
    score -= int(s["turns_to_success"] > EFFICIENT_TURNS)
    why = [k for k, v in s.items() if v and k != "turns_to_success"]
    if s["turns_to_success"] > EFFICIENT_TURNS:
        why.append(f"{s['turns_to_success']} turns")
    return Satisfaction(score=max(1, min(5, score)), signals=s,
                        reason=("task done" if record.status == "passed" else "task not done")
                        + (f"; {', '.join(why)}" if why else ""))


JUDGE_PROMPT = """You rate how satisfied the customer in a customer-service dialogue is, as in user
satisfaction studies of task-oriented dialogue systems, on a 1-5 scale:
1 very dissatisfied (gave up, or the agent made things worse), 2 dissatisfied (task not done),
3 neutral (done with much friction: repeated questions, errors, many turns), 4 satisfied (done with
small friction), 5 very satisfied (done quickly and smoothly).
Answer with JSON only: {"score": <1-5>, "reason": "<one sentence>"}"""


def transcript_text(record: TrialRecord) -> str:
    lines = []
    for m in record.messages:
        text = m.get("content") if isinstance(m.get("content"), str) else ""
        if m.get("role") in ("user", "assistant") and text and not m.get("inner"):
            lines.append(f"{'Customer' if m['role'] == 'user' else 'Agent'}: {text}")
    return "\n".join(lines)


def parse_judgement(text: str) -> Satisfaction | None:
    """The judge's JSON answer (or the first 1-5 in it, for a model that wraps its JSON in words)."""
    m = re.search(r"\{.*\}", text, re.S)
    try:
        data = json.loads(m.group(0)) if m else {}
        score = int(data.get("score"))
        reason = str(data.get("reason", ""))
    except (ValueError, TypeError):
        found = re.search(r"\b([1-5])\b", text)
        if not found:
            return None
        score, reason = int(found.group(1)), text.strip()[:200]
    if not 1 <= score <= 5:
        return None
    return Satisfaction(score=score, source="judge", reason=reason[:300])


async def judge_satisfaction(model: ChatModel, record: TrialRecord) -> Satisfaction | None:
    """The judge model's rating of one dialogue; None when it gave no usable answer."""
    request = ModelRequest(messages=[SystemMessage(content=JUDGE_PROMPT),
                                     UserMessage(content=transcript_text(record) or "(no dialogue)")],
                           extra={"temperature": 0, "max_tokens": 120})
    response = await model.complete(request)
    return parse_judgement(text_of(response.message) or "")
