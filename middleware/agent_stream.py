"""The agent's stream as the client sees it: chunks relayed as they come, except text that is
being checked (released sentence by sentence), text a model refiner may rewrite (held whole),
calls to rein-owned tools (never shown) and, when an action check may hold them (``hold_calls``),
the client's tool calls: from the first tool-call chunk on, the rest of the draft waits in
``Relayed.calls`` until the pipeline has checked the calls (``released_calls``).

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
    calls: list[dict[str, Any]] = field(default_factory=list)  # tool-call chunks (and after) held for the check


async def relay_agent_stream(agent: ChatModel, request: ModelRequest, writer: Callable[[Any], None],
                             owned: set[str], mode: str = PASS, check: SentenceCheck | None = None,
                             hold_calls: bool = False) -> Relayed:
    """Stream ``agent`` into ``writer`` by ``mode``: ``pass`` relays every chunk; ``sentences``
    releases each sentence once ``check`` passed it; ``whole`` holds the text (the client is told
    ``: rein refining`` as holding begins) until the refiners are done, but a tool-call draft (never
    refined) releases what was held and streams on — unless ``hold_calls``: then the text before
    the first tool call goes out as it would have, and that call and all after it are held."""
    acc = ChunkAccumulator()
    owned_index: set[int] = set()
    held: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    held_at = 0.0
    release = SentenceRelease(check, writer) if mode == SENTENCES and check is not None else None
    if release is not None:
        check.start()
    hold = mode == WHOLE
    chunks = agent.stream(request)
    async for c in chunks:
        acc.add(c)
        out = without_owned_calls(c, owned, owned_index)
        if out is None:
            continue
        if hold_calls and _opens_call(out):
            calls.append(out)
            if release is not None:
                await release.close()  # the text before the call is complete: checked, then released
            elif hold:
                for h in held:
                    writer(h)
                held.clear()
                hold = False
            break  # the rest of the draft waits with the call (below): no per-chunk test up here
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
    if calls:
        async for c in chunks:
            acc.add(c)
            out = without_owned_calls(c, owned, owned_index)
            if out is not None:
                calls.append(out)
    if release is not None:
        await release.close()
    draft = acc.response()
    owned_call = bool(draft.message.tool_calls and owned_index)
    if release is not None:
        return Relayed(draft, not owned_call and not calls, report=release.report, check=check, calls=calls)
    report = StreamReport(held=WHOLE) if hold else None
    return Relayed(draft, not hold and not owned_call and not calls, held=held if hold else [], held_at=held_at,
                   report=report, calls=calls)


def has_tool_calls(c: dict[str, Any]) -> bool:
    return any((ch.get("delta") or {}).get("tool_calls") for ch in c.get("choices") or [])


def _opens_call(c: dict[str, Any]) -> bool:
    # Asked of every chunk of a stream whose calls are held: a plain loop, not a generator.
    for choice in c.get("choices") or ():
        delta = choice.get("delta")
        if delta and delta.get("tool_calls"):
            return True
    return False


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


def released_calls(chunks: list[dict[str, Any]], dropped: set[str], notice: str) -> list[dict[str, Any]]:
    """Held tool-call chunks once checked: as the upstream sent them, or without the deltas of the
    ``dropped`` calls (by call id) and with ``notice`` as text before the first call; a draft left
    with no call finishes with ``stop``."""
    if not dropped:
        return chunks
    deltas = [tc for c in chunks for ch in c.get("choices") or [] for tc in (ch.get("delta") or {}).get("tool_calls") or []]
    indexes = {tc.get("index", 0) for tc in deltas}
    # A call the upstream sent without an id is "call_<index>" in the draft (ChunkAccumulator).
    index_of = {f"call_{i}": i for i in indexes} | {tc["id"]: tc.get("index", 0) for tc in deltas if tc.get("id")}
    # A dropped call not found here is never let through: then no call of the draft goes out.
    drop = {index_of[i] for i in dropped if i in index_of} if all(i in index_of for i in dropped) else indexes
    kept_any = bool(indexes - drop)
    out: list[dict[str, Any]] = []
    for c in chunks:
        choices = c.get("choices") or []
        if not choices:  # the usage chunk
            out.append(c)
            continue
        choice, delta = choices[0], choices[0].get("delta") or {}
        if notice and delta.get("tool_calls"):
            out.append({**c, "choices": [{**choice, "delta": {"content": notice}, "finish_reason": None}]})
            notice = ""
        if delta.get("tool_calls"):
            kept = [tc for tc in delta["tool_calls"] if tc.get("index", 0) not in drop]
            delta = {**delta, "tool_calls": kept} if kept else {k: v for k, v in delta.items() if k != "tool_calls"}
        finish = choice.get("finish_reason")
        if finish == "tool_calls" and not kept_any:
            finish = "stop"
        if not delta and not finish:
            continue
        out.append({**c, "choices": [{**choice, "delta": delta, "finish_reason": finish}, *choices[1:]]})
    return out
