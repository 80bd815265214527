"""What the earlier messages of a dialogue speak of, newest first, within the caps of
``inception.candidates``: the candidates each message holds, the agent's focus (the ids of its
last sentence), and each id's surroundings and owner.
"""
from __future__ import annotations

from dataclasses import dataclass

from inception.candidates import (CONTEXT_CHARS, JSON_NODES, MESSAGE_CHARS, Candidate, _from_json, _shape,
                                  ids_in_text)
from inception.dialogue import Dialogue
from policies.messages import AssistantMessage, DeveloperMessage, SystemMessage, ToolMessage, text_of


@dataclass
class Said:
    """The candidates one earlier message speaks of; ``tail``: those of its last sentence (agent text)."""
    cands: list[Candidate]
    tail: set[str]
    agent: bool = False   # the agent's own text


@dataclass
class Context:
    said: list[Said]          # per earlier message, newest first
    around: dict[str, str]    # id -> every context it was seen in
    owner: dict[str, str]     # id -> the id of the object it is part of, from tool results
    read: int                 # characters read
    total: int                # characters of the earlier messages (text and call arguments)


def read_context(d: Dialogue) -> Context:
    """What the earlier messages speak of, newest first, within the caps."""
    raw: list[tuple[str, bool, bool]] = []   # (text, is free text, is the agent's text)
    read = total = 0
    for m in reversed(d.messages[:d.turn_start]):
        if isinstance(m, (SystemMessage, DeveloperMessage)):
            continue
        texts = [(text_of(m), isinstance(m, AssistantMessage))]
        if isinstance(m, AssistantMessage) and m.tool_calls:
            texts += [(c.function.arguments or "", False) for c in m.tool_calls]
        for t, agent in texts:
            total += len(t)
            if read < CONTEXT_CHARS:
                raw.append((t, not isinstance(m, ToolMessage) or _first(t) not in "{[", agent))
                read += min(len(t), MESSAGE_CHARS)
    budget = [JSON_NODES]   # shared: the newest results are walked first
    structured = [None if free else _from_json(t, budget) for t, free, _ in raw]
    known = {c.ident: c.kind for cs in structured if cs for c in cs}
    shapes: dict[str, str | None] = {}
    for ident, kind in known.items():
        shapes[_shape(ident)] = kind if shapes.get(_shape(ident), kind) == kind else None
    said = []
    for (t, _, agent), cs in zip(raw, structured):
        cands = cs if cs is not None else ids_in_text(t[:MESSAGE_CHARS], known, shapes)
        tail: set[str] = set()
        if agent and cands:
            last = last_sentence(t[-2000:].strip())
            tail = {c.ident for c in cands if c.ident in last}
        said.append(Said(cands, tail, agent))
    around: dict[str, str] = {}
    owner: dict[str, str] = {}
    for s in said:
        for c in s.cands:
            if len(around.get(c.ident, "")) < 600:
                around[c.ident] = around.get(c.ident, "") + " " + c.around
            if c.owner:
                owner.setdefault(c.ident, c.owner)
    return Context(said, around, owner, read, total)


def last_sentence(text: str) -> str:
    """The last piece of ``re.split(r"(?<=[.!?])\\s+|\\n+", text)`` (``text`` stripped; "" when
    empty), found from its end: the split's separators are the blank runs after a sentence's end,
    and the line breaks of other blank runs (a regex split read all 2,000 characters of a reply)."""
    i = len(text)
    while True:
        j = i - 1
        while j >= 0 and not text[j].isspace():
            j -= 1
        if j < 0:
            return text
        a = j  # text[a:j + 1] is a run of blanks
        while a > 0 and text[a - 1].isspace():
            a -= 1
        if a > 0 and text[a - 1] in ".!?":
            return text[j + 1:]
        nl = text.rfind("\n", a, j + 1)
        if nl >= 0:
            return text[nl + 1:]
        i = a


def _first(text: str) -> str:
    """``text.lstrip()[:1]`` without copying a long text."""
    head = text[:64].lstrip()
    return head[:1] if head else text.lstrip()[:1]
