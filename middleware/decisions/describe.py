"""How a decision is described in the log: where its evidence sits in the dialogue, the diff of
a refinement, what came next, the plan's template. Run in the log's writer thread."""
from __future__ import annotations

import difflib
import re
from typing import Any

from policies.messages import AssistantMessage, ToolMessage, text_of

_PIECES = re.compile(r"[\"'{}\[\],;]|\s-\s|\breturned:\s")
MIN_PIECE = 12  # a shorter run of text is found in too many messages to point at one
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n+")


_ID = re.compile(r"\b(?=[A-Za-z0-9_-]*\d)(?=[A-Za-z0-9_-]*[A-Za-z])[A-Za-z0-9_-]{4,40}\b")


def evidence_pieces(evidence: str, ids: bool = True) -> list[str]:
    """What the evidence quotes from the dialogue: its quoted phrases, its runs long enough to find
    again, and (``ids``) the ids it names — the page marks them in the messages."""
    evidence = evidence or ""
    # Quotes pair up left to right: every other stretch between two quote marks is quoted.
    pieces = {q for q in evidence.split('"')[1::2] if 4 <= len(q) <= 200} if evidence.count('"') % 2 == 0 else set()
    pieces |= {p.strip() for p in _PIECES.split(evidence) if len(p.strip()) >= MIN_PIECE}
    if ids:
        pieces |= set(_ID.findall(evidence))
    return sorted(pieces, key=len, reverse=True)[:16]


def evidence_places(evidence: str, messages: list[Any]) -> list[int]:
    """The indexes of the messages the evidence quotes (latest first, at most 4)."""
    pieces = evidence_pieces(evidence, ids=False)
    if not pieces:
        return []
    out = []
    for i in range(len(messages) - 1, -1, -1):
        text = text_of(messages[i])
        if any(p in text for p in pieces):
            out.append(i)
            if len(out) == 4:
                break
    return out


def diff_of(before: str | None, after: str | None, content: bool) -> list[Any]:
    """Changed sentences as [before, after] pairs; without content, their shape only
    ({"sentence": n, "removed": chars, "added": chars})."""
    split = lambda s: [p for p in _SENTENCES.split(s or "") if p.strip()]  # noqa: E731
    a, b = split(before or ""), split(after or "")
    out: list[Any] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        was, now = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        out.append([was, now] if content else {"sentence": i1 + 1, "removed": len(was), "added": len(now)})
    return out


def next_of(messages: list[Any], content: bool, limit: int = 6) -> list[dict[str, Any]]:
    """What came after a decision, up to the next user message: the reply the client got, the
    tool calls and results, the user's answer (text only with content)."""
    out = []
    for m in messages[:limit]:
        item: dict[str, Any] = {"role": m.role}
        if isinstance(m, AssistantMessage) and m.tool_calls:
            item["calls"] = [c.function.name for c in m.tool_calls]
        if isinstance(m, ToolMessage) and text_of(m).startswith("[error]"):
            item["error"] = True
        if content and text_of(m):
            item["text"] = text_of(m)[:400]
        out.append(item)
        if m.role == "user":
            break
    return out


def plan_template(policy: Any, rule: str) -> str | None:
    """The pack's plan for a detection rule, unfilled: rein's own text, with no message content."""
    if not rule.startswith("detect:"):
        return None
    label = rule[len("detect:"):]
    type_, _, subtype = label.partition("/")
    entry = policy.error_type(type_, subtype or None) or policy.error_type(type_)
    return entry.plan if entry is not None and entry.plan else None
