"""What rein tells a client about a turn, the same on every route: ``x-rein-*`` response headers,
and on a stream the SSE header constant, the ``: rein refining`` notice and the closing
``: rein {...}`` trailer (comments: every SSE client skips them; ops/metrics.py reads the trailer).
"""
from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request

from middleware.incidents import header_value
from middleware.redact import redact
from middleware.rule_modes import headers as rule_headers

SSE_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
# x-rein-held, decided before the draft: none (chunks pass as they come), sentences (each sentence
# once checked: at most one sentence of delay), whole (a refiner may ask rein's model).
HELD = {"pass": "none", "sentences": "sentences", "whole": "whole"}


def overhead_ms(start: float, minus: float = 0.0) -> str:
    """``x-rein-overhead-ms``: the time since ``start`` less ``minus`` (the upstream's), in ms."""
    return f"{max(0.0, (time.perf_counter() - start) * 1000 - minus):.3f}"


def pack_headers(request: Request, pipeline: Any) -> dict[str, str]:
    """The request headers the policy reads (e.g. its action rules' "now"); never sent upstream."""
    return {h: request.headers[h] for h in pipeline.reads_headers if h in request.headers}


def diagnosed_headers(state: dict[str, Any]) -> dict[str, str]:
    """A stream's headers, known once diagnosis is done: before the agent is asked."""
    return {**state_headers(state), "x-rein-held": HELD.get(state.get("stream_mode") or "pass", "none")}


def state_headers(state: dict[str, Any]) -> dict[str, str]:
    out = rule_headers(state.get("hits") or [])  # x-rein-rules, x-rein-would-* (shadow mode)
    if state.get("diagnosis") is not None:
        out["x-rein-diagnosis"] = state["diagnosis"].header()
    if state.get("refinement") is not None:
        out["x-rein-refined"] = state["refinement"].header()
        if state["refinement"].flags:  # reported, left as the agent wrote it (factuality mode: flag)
            out["x-rein-flagged"] = state["refinement"].flag_header()
    elif "plan" in state or state.get("final") is not None:
        out["x-rein-refined"] = "none"
    # Action checks on tool-call drafts, by rule id: held (the agent was re-asked), dropped (still
    # held after the policy's rounds: not sent), flagged (reported only).
    for header, key in (("x-rein-held-calls", "held_calls"), ("x-rein-dropped-calls", "dropped_calls"),
                        ("x-rein-flagged-calls", "flagged_calls")):
        if state.get(key):
            out[header] = ",".join(dict.fromkeys(d.rule_id for d in state[key])).encode("ascii", "replace").decode()
    if state.get("incidents"):  # failures the agent reported: /metrics counts them from here
        out["x-rein-incident"] = header_value(state["incidents"])
    if state.get("notes"):
        # Notes may quote a failure of rein's own model: its address stays in the log, not the header.
        out["x-rein-fail-open"] = redact("; ".join(state["notes"]))[:500].encode("ascii", "replace").decode()
    return out


def notice(text: str) -> bytes:
    """``: rein refining``: the text is held whole, said at once rather than after the refiners."""
    return b": rein " + text.encode("ascii", "replace") + b"\n\n"


def trailer(state: dict[str, Any]) -> bytes:
    """What rein did, once the stream is done, as an SSE comment (clients ignore comments)."""
    summary = state_headers(state)
    if state.get("stream_report") is not None:  # whether text was held, how long, which sentences changed
        summary.update(state["stream_report"].fields())
    return b": rein " + orjson.dumps(summary) + b"\n\n"
