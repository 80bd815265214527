"""The agent's stream as the client sees it: chunks relayed as they come, except text that is
being checked (released sentence by sentence), text a model refiner may rewrite (held whole) and
calls to rein-owned tools (never shown).

    relayed = await relay_agent_stream(agent, request, writer, owned, mode="sentences", check=check)
    relayed.draft, relayed.streamed, relayed.report
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from middleware.models.chunks import ChunkAccumulator
from middleware.sentence_release import SentenceRelease, StreamReport
from policies.chat_model import ChatModel, ModelRequest, ModelResponse
from refiners.stream_check import SentenceCheck

PASS, SENTENCES, WHOLE = "pass", "sentences", "whole"


@dataclass(frozen=True)
class Notice:
    """An SSE comment for the client (``: rein refining``), not a chunk."""
    text: str


@dataclass
class Relayed:
    draft: ModelResponse
    streamed: bool                       # the text already went out (checked, when it was checked)
    held: list[dict[str, Any]] = field(default_factory=list)  # the upstream's chunks held whole
    held_at: float = 0.0                 # when holding began (perf_counter)
    report: StreamReport | None = None
    check: SentenceCheck | None = None


async def relay_agent_stream(agent: ChatModel, request: ModelRequest, writer: Callable[[Any], None],
                             owned: set[str], mode: str = PASS, check: SentenceCheck | None = None) -> Relayed:
    """Stream ``agent`` into ``writer`` by ``mode``: ``pass`` relays every chunk; ``sentences``
    releases each sentence once ``check`` passed it; ``whole`` holds the text (the client is told
    ``: rein refining`` as holding begins) until the refiners are done, but a tool-call draft (never
    refined) releases what was held and streams on."""
    acc = ChunkAccumulator()
    owned_index: set[int] = set()
    held: list[dict[str, Any]] = []
    held_at = 0.0
    release = SentenceRelease(check, writer) if mode == SENTENCES and check is not None else None
    if release is not None:
        check.start()
    hold = mode == WHOLE
    async for c in agent.stream(request):
        acc.add(c)
        out = without_owned_calls(c, owned, owned_index)
        if out is None:
            continue
        if release is not None:
            await release.add(out)
            continue
        if hold and not has_tool_calls(out):
            if not held:
                held_at = time.perf_counter()
                writer(Notice("refining"))
            held.append(out)
            continue
        if hold:
            for h in held:
                writer(h)
            held.clear()
            hold = False
        writer(out)
    if release is not None:
        await release.close()
    draft = acc.response()
    owned_call = bool(draft.message.tool_calls and owned_index)
    if release is not None:
        return Relayed(draft, not owned_call, report=release.report, check=check)
    report = StreamReport(held=WHOLE) if hold else None
    return Relayed(draft, not hold and not owned_call, held=held if hold else [], held_at=held_at, report=report)


def has_tool_calls(c: dict[str, Any]) -> bool:
    return any((ch.get("delta") or {}).get("tool_calls") for ch in c.get("choices") or [])


def without_owned_calls(c: dict[str, Any], owned: set[str], owned_index: set[int]) -> dict[str, Any] | None:
    """Drop the deltas of tool calls to rein-owned tools (matched by index once named)."""
    if not owned:
        return c
    choices = c.get("choices") or []
    if not choices:
        return c
    delta = choices[0].get("delta") or {}
    calls = delta.get("tool_calls")
    if not calls:
        if choices[0].get("finish_reason") == "tool_calls" and owned_index:
            return None
        return c
    kept = []
    for tc in calls:
        name = (tc.get("function") or {}).get("name")
        if name in owned:
            owned_index.add(tc.get("index", 0))
        if tc.get("index", 0) not in owned_index:
            kept.append(tc)
    if kept == calls:
        return c
    if not kept and not delta.get("content"):
        return None
    new_delta = {**delta, "tool_calls": kept} if kept else {k: v for k, v in delta.items() if k != "tool_calls"}
    return {**c, "choices": [{**choices[0], "delta": new_delta}]}
