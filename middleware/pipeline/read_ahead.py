"""What rein does while the agent writes (the ``agent`` stage's call to the upstream).

An agent's answer takes hundreds of milliseconds; rein's slowest work on a turn is reading the
dialogue's tool results for the first time, for the draft's checks. So, once the agent has taken
``AFTER_S`` to answer, a callback (no task, no loop pass) has the refiners and the action checks
read the dialogue (``Refinery.prepare``, ``Inception.prepare``): ``plan_refine`` and
``check_actions`` then find it read. A young collection that would soon land inside a stage runs
then too. An upstream that answers sooner (a cache, a replay) gets no read ahead: the stages read
what they need, as they would without it, and no CPU goes to reading what no draft asks about.

A read ahead that fails is a trace event (``rein.read_ahead.skipped``), not a note: the stage after
the draft reads the dialogue itself, and notes a failure there as it always did, whatever the
upstream's speed. The reading is CPU spent on every agent call that takes 2 ms, also on those that
end in a tool call (the next turn finds its tool results read).

rein's own time (``x-rein-overhead-ms``) counts the read ahead when the answer came less than
``RECENT_S`` after it ended (it may have waited for it), and not when the agent was still writing
long after. ``bench/real_dialogues.py`` reports the time per turn on the path and the CPU of the
read ahead apart.
"""
from __future__ import annotations

import asyncio
import gc
import time
from typing import Any, Awaitable, Callable

from middleware import tracing
from middleware.pipeline.stream import turn_context
from middleware.state import TurnState

# A young collection walks what survived the young passes since the last one: after the read ahead
# that is the facts just read (1-3 ms on a dialogue's first read). Run it now, while the agent
# writes, when the automatic one is at most this many generation-0 passes away (each is ~700
# allocations; checking a draft makes two to four): then it does not land inside a stage on the path.
YOUNG_PASS_WITHIN = 3
YOUNG_HALF = 0.5  # of the generation-0 threshold: a pass now, while the agent writes, rather than after the draft
AFTER_S = 0.002   # an upstream still writing after this is a model: read while it writes
RECENT_S = 0.005  # an answer this soon after the read ahead ended may have waited for it


async def while_answering(p: Any, state: TurnState, start: Callable[[], Awaitable[Any]]
                          ) -> tuple[Any, float, dict[str, Any]]:
    """(the agent's answer, how long the agent took, what the read ahead adds to the state: the
    refiners' context). ``start()`` makes the agent's call. Nothing is asked of the refiners before
    the call: whether any applies is asked inside the read ahead (a gate may read the evidence)."""
    ctx = turn_context(state) if p.policy.refiners.enabled else None
    reads: list[tuple[Callable[..., Any], tuple]] = []
    # (optional in both protocols: a part swapped in without subclassing them may not have it)
    prepare = getattr(p.refinery, "prepare", None)
    if ctx is not None and prepare is not None:
        reads.append((prepare, (ctx,)))
    prepare = getattr(p.inception, "prepare", None)
    if prepare is not None and _asks(p.inception.checks_calls, state["request"].tools):
        reads.append((prepare, (state["messages"], state["tools"], now(p, state))))
    kept = {} if ctx is None else {"context": ctx}
    if not reads:  # nothing to read: no callback
        return (*await _timed(start()), kept)
    spent = [0.0, 0.0]  # (ms, when it ended)
    read = asyncio.get_running_loop().call_later(AFTER_S, _read_ahead, reads, spent)
    try:
        answer, waited = await _timed(start())
    finally:
        read.cancel()  # not run yet (the agent answered sooner): the checks read as before
    if spent[1] and time.perf_counter() - spent[1] < RECENT_S:
        waited = max(0.0, waited - spent[0])  # the answer may have waited for it: rein's time
    return answer, waited, kept


def now(p: Any, state: TurnState) -> str | None:
    """The request's time header, when the pack reads the dialogue's time from one."""
    headers = state["request"].headers
    return next((headers[h] for h in p.reads_headers if h in headers), None) if headers else None


def young_pass_if_due() -> None:
    """A generation-1 collection now, if the automatic one is due within ``YOUNG_PASS_WITHIN``
    passes; else a generation-0 one, if its automatic one is ``YOUNG_HALF`` of the way: the stages
    after the draft then start with an empty young generation. On the airline dev set, checked as
    the pipeline reads ahead (``bench/real_actions.py``, 3,105 checks), 35 generation-0 passes
    (75 us each) and 7 generation-1 passes (1 ms) had landed inside a draft's check; with this, none."""
    young, middle, _ = gc.get_threshold()
    if not gc.isenabled() or not young:
        return
    count = gc.get_count()
    if middle and count[1] >= middle - YOUNG_PASS_WITHIN:
        gc.collect(1)
    elif count[0] >= young * YOUNG_HALF:
        gc.collect(0)


def _read_ahead(reads: list[tuple[Callable[..., Any], tuple]], spent: list[float]) -> None:
    started = time.perf_counter()
    for prepare, args in reads:
        try:
            prepare(*args)
        except Exception as e:  # the stage after the draft reads the dialogue itself, and says so if it fails
            tracing.event("rein.read_ahead.skipped", {"reason": f"{type(e).__name__}: {e!s:.120}"})
    young_pass_if_due()
    spent[1] = time.perf_counter()
    spent[0] = (spent[1] - started) * 1000


def _asks(question: Any, arg: Any) -> bool:
    try:
        return bool(question(arg))
    except Exception:  # the stage after the draft meets the same error and says so
        return False


async def _timed(call: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    answer = await call
    return answer, (time.perf_counter() - started) * 1000
