"""The agent's stream as the client sees it: chunks relayed as they come, except text that may
still be refined (held) and calls to rein-owned tools (never shown)."""
from __future__ import annotations

from typing import Any, Callable

from middleware.models.chunks import ChunkAccumulator
from policies.model import ChatModel, ModelRequest, ModelResponse


async def relay_agent_stream(agent: ChatModel, request: ModelRequest, writer: Callable[[dict[str, Any]], None],
                             owned: set[str], hold_text: bool) -> tuple[ModelResponse, bool]:
    """Stream ``agent`` into ``writer``; return the whole draft and whether it already went out.

    With ``hold_text`` nothing unrefined leaves rein, but a tool-call draft (never refined)
    releases what was held and streams on.
    """
    acc = ChunkAccumulator()
    owned_index: set[int] = set()
    held: list[dict[str, Any]] = []
    async for c in agent.stream(request):
        acc.add(c)
        out = without_owned_calls(c, owned, owned_index)
        if out is None:
            continue
        if hold_text and not has_tool_calls(out):
            held.append(out)
            continue
        if hold_text:
            for h in held:
                writer(h)
            held.clear()
            hold_text = False
        writer(out)
    draft = acc.response()
    return draft, not hold_text and not (draft.message.tool_calls and owned_index)


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
