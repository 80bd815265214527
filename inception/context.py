"""What the earlier messages of a dialogue speak of, newest first, within the caps of
``inception.candidates``: the candidates each message holds, the agent's focus (the ids of its
last sentence), and each id's surroundings and owner.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

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


class Context:
    """What the earlier messages speak of. Each message's candidates are read when first asked for,
    newest first (``newest()``): a referent is weighed against the newest message of its kind, so the
    older free texts of a long dialogue are often never scanned. Ids in free text take the kinds of
    the ids of every JSON result, which are read first."""

    def __init__(self, raw: list[tuple[str, bool, bool]], structured: list[list[Candidate] | None],
                 read: int, total: int):
        self._raw, self._structured = raw, structured
        self.read = read      # characters read
        self.total = total    # characters of the earlier messages (text and call arguments)
        self._known = {c.ident: c.kind for cs in structured if cs for c in cs}
        self._shapes: dict[str, str | None] = {}
        for ident, kind in self._known.items():
            self._shapes[_shape(ident)] = kind if self._shapes.get(_shape(ident), kind) == kind else None
        self._said: list[Said] = []
        self._around: dict[str, str] | None = None
        self._owner: dict[str, str] | None = None

    def newest(self) -> Iterator[Said]:
        """Per earlier message, newest first."""
        at = 0
        while at < len(self._raw):
            if at == len(self._said):
                self._said.append(self._read(at))
            yield self._said[at]
            at += 1

    @property
    def said(self) -> list[Said]:
        """Every earlier message's candidates (all read), newest first."""
        for _ in self.newest():
            pass
        return self._said

    @property
    def around(self) -> dict[str, str]:
        """id -> every context it was seen in."""
        if self._around is None:
            self._around = {}
            for s in self.said:
                for c in s.cands:
                    if len(self._around.get(c.ident, "")) < 600:
                        self._around[c.ident] = self._around.get(c.ident, "") + " " + c.around
        return self._around

    @property
    def owner(self) -> dict[str, str]:
        """id -> the id of the object it is part of (only ids read from JSON have one)."""
        if self._owner is None:
            self._owner = {}
            for cs in self._structured:
                for c in cs or ():
                    if c.owner:
                        self._owner.setdefault(c.ident, c.owner)
        return self._owner

    def _read(self, at: int) -> Said:
        (t, _, agent), cs = self._raw[at], self._structured[at]
        cands = cs if cs is not None else ids_in_text(t[:MESSAGE_CHARS], self._known, self._shapes)
        tail: set[str] = set()
        if agent and cands:
            last = last_sentence(t[-2000:].strip())
            tail = {c.ident for c in cands if c.ident in last}
        return Said(cands, tail, agent)


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
    return Context(raw, [None if free else _from_json(t, budget) for t, free, _ in raw], read, total)


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
