"""The decision log: what each rule did (or would have done) in each request, kept off the
request's path.

The pipeline calls ``DecisionLog.turn`` once at the end of every turn: it appends one tuple to a
queue and returns. A writer thread wakes every ``flush_s`` (or when ``batch`` turns are waiting),
turns them into rows — the conversation key, the evidence's place in the dialogue, the diff — and
writes them in one transaction; ``close`` (a clean shutdown) writes what is still queued. Message
text is kept only when the operator opts in (``REIN_LOG_CONTENT=1``): otherwise a row holds rule
ids, modes, message positions, the pack's plan template (rein's own text) and the diff's shape.

    log = DecisionLog(open_decision_store("./rein-decisions.db"), content=True)
    engine = Engine(agent, policy="default", decisions=log)      # every turn of every surface is logged
    ...
    log.close()
"""
from __future__ import annotations

import atexit
import collections
import hashlib
import os
import random
import threading
import time
import uuid
from typing import Any

import orjson

from middleware.decisions.describe import diff_of, evidence_places, next_of, plan_template
from middleware.decisions.store import DecisionStore, day_of
from middleware.rule_modes import Hit
from policies.messages import SystemMessage, UserMessage, dump_messages, text_of
from refiners.store import TENANT

OPEN_CONVERSATIONS = 10_000  # conversations whose next turn is awaited, per process (oldest forgotten)
PURGE_EVERY_S = 3600.0


def log_content() -> bool:
    """Message text goes into the log only when the operator opts in (``REIN_LOG_CONTENT=1``)."""
    return os.environ.get("REIN_LOG_CONTENT", "").lower() in ("1", "true", "yes")


def conversation_key(tenant: str, messages: list[Any]) -> str:
    """The same for every turn of one dialogue: its tenant, system prompt and first user message."""
    system = next((text_of(m) for m in messages if isinstance(m, SystemMessage)), "")
    first = next((text_of(m) for m in messages if isinstance(m, UserMessage)), "")
    return hashlib.sha256(f"{tenant}\0{system}\0{first}".encode()).hexdigest()[:20]


class DecisionLog:
    """Batches decisions to a ``DecisionStore`` from a thread of its own."""

    def __init__(self, store: DecisionStore, content: bool | None = None, sample: float = 0.0,
                 retention_days: float | None = None, flush_s: float = 0.5, batch: int = 256):
        self.store = store
        self.content = log_content() if content is None else content
        self.sample = sample            # share of clean requests recorded too (rule "none")
        self.retention_days = retention_days
        self.flush_s, self.batch = flush_s, batch
        self.failures = 0  # batches that could not be written (after a retry); /metrics counts them
        self.lost = 0  # turns in those batches
        self.cpu_s = 0.0                # the writer's CPU time so far (bench/decision_overhead.py prints it)
        self.errors: collections.deque[str] = collections.deque(maxlen=20)
        self._queue: collections.deque[tuple] = collections.deque()
        self._open: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._wake = threading.Event()
        self._stop = False
        self._write_lock = threading.Lock()
        self._purged_at = 0.0
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: Any) -> "DecisionLog | None":
        """The proxy's log: kept when ``--decision-db`` is given, or under ``--shadow`` (whose point is
        the record; then in ./rein-decisions.db unless named); None otherwise."""
        if not (settings.decision_db or settings.shadow):
            return None
        from middleware.decisions.store import open_decision_store

        return cls(open_decision_store(settings.decision_db), sample=settings.decision_sample,
                   retention_days=settings.decision_retention_days)

    # ---- the request's path ------------------------------------------------------------
    def turn(self, policy: Any, request: Any, hits: list[Hit], reply: Any, rein_ms: float) -> None:
        """One finished turn (``reply``: the message the client got). O(1): a queue append."""
        self._queue.append((time.time(), TENANT.get(), policy, request, hits, reply, rein_ms))
        if self._thread is None:
            self._start()
        if len(self._queue) >= self.batch:
            self._wake.set()

    # ---- the writer thread -------------------------------------------------------------
    def _start(self) -> None:
        with self._write_lock:
            if self._thread is None and not self._stop:
                self._thread = threading.Thread(target=self._loop, name="rein-decisions", daemon=True)
                self._thread.start()
                atexit.register(self.close)  # a process that exits without closing the log still writes it

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write what is queued now (any thread); how many turns were written."""
        with self._write_lock:
            started = time.thread_time()
            try:
                return self._flush()
            finally:
                self.cpu_s += time.thread_time() - started

    def _flush(self) -> int:
        items = []
        while self._queue:
            items.append(self._queue.popleft())
        if not items:
            return 0
        try:
            rows = self._rows(items)
        except Exception as e:  # off the request's path: counted and kept, never raised
            self.failures += 1
            self.lost += len(items)
            self.errors.append(f"{type(e).__name__}: {e!s:.160}")
            return 0
        for attempt in (1, 2):  # a busy database (another process writing) gets a second try
            try:
                self.store.add(**rows)
                break
            except Exception as e:
                if attempt == 2:
                    self.failures += 1
                    self.lost += len(items)
                    self.errors.append(f"{type(e).__name__}: {e!s:.160}")
                else:
                    time.sleep(0.2)
        if self.retention_days and time.time() - self._purged_at > PURGE_EVERY_S:
            self._purged_at = time.time()
            try:
                self.store.purge(self.retention_days)
            except Exception as e:
                self.errors.append(f"purge: {type(e).__name__}: {e!s:.160}")
        return len(items)

    def close(self) -> None:
        """Stop the writer and write everything still queued (a clean shutdown loses nothing)."""
        if self._thread is not None:
            atexit.unregister(self.close)
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def _rows(self, items: list[tuple]) -> dict[str, Any]:
        rows, dialogues, fills = [], [], []
        requests: collections.Counter = collections.Counter()
        for n, (at, tenant, policy, request, hits, reply, rein_ms) in enumerate(items):
            if n % 16 == 15:
                time.sleep(0)  # hand the GIL to the event loop now and then: a big batch never holds it long
            messages = request.messages
            turn = len(messages)
            requests[(day_of(at), tenant, policy.name)] += 1
            conv = conversation_key(tenant, messages)
            waiting = self._open.pop((tenant, conv), None)
            if waiting is not None and turn > waiting:
                fills.append((tenant, conv, turn, orjson.dumps(next_of(messages[waiting:], self.content)).decode()))
            elif waiting is not None:
                self._open[(tenant, conv)] = waiting
            # A rule found again on a re-asked draft is still one decision of this request.
            once: dict[tuple[str, str], Hit] = {}
            for hit in hits:
                once.setdefault((hit.rule, hit.stage), hit)
            hits = list(once.values())
            sampled = not hits and self.sample and random.random() < self.sample
            if not hits and not sampled:
                continue
            request_id = uuid.uuid4().hex[:16]
            for hit in hits or [Hit("none", "act", "none")]:
                rows.append(self._row(at, tenant, conv, turn, request_id, policy, hit, messages, rein_ms))
            if self.content:
                dialogues.append({"request_id": request_id, "at": at,
                                  "messages": orjson.dumps(dump_messages(messages)).decode(),
                                  "tools": orjson.dumps(request.tools).decode() if request.tools else None,
                                  "reply": orjson.dumps(_reply(reply, hits)).decode()})
            self._open[(tenant, conv)] = turn
            while len(self._open) > OPEN_CONVERSATIONS:
                self._open.popitem(last=False)
        return {"rows": rows, "dialogues": dialogues, "requests": dict(requests), "fills": fills}

    def _row(self, at, tenant, conv, turn, request_id, policy, hit: Hit, messages, rein_ms) -> dict[str, Any]:
        diff = diff_of(hit.before, hit.after, self.content) if hit.before is not None else None
        return {"id": uuid.uuid4().hex[:16], "at": at, "tenant": tenant, "conversation": conv, "turn": turn,
                "request_id": request_id, "policy": policy.name, "rule": hit.rule, "mode": hit.mode,
                "stage": hit.stage, "evidence": hit.evidence if self.content else None,
                "evidence_at": orjson.dumps(evidence_places(hit.evidence, messages)).decode() if hit.evidence else None,
                "plan": (hit.plan if self.content else plan_template(policy, hit.rule)) if hit.stage != "refine" else None,
                "diff": orjson.dumps(diff).decode() if diff is not None else None, "rein_ms": round(rein_ms, 3),
                "next": None, "verdict": None, "note": None, "marked_at": None}


def _reply(reply: Any, hits: list[Hit]) -> dict[str, Any]:
    """What the client got, and what the agent drafted when rein changed or held it."""
    out: dict[str, Any] = {"message": dump_messages([reply])[0] if reply is not None else None}
    draft = next((h.before for h in hits if h.before is not None), None)
    drafted = next((h.drafted for h in hits if h.drafted is not None), None)
    if draft is not None:
        out["draft"] = draft
    if drafted is not None:
        out["drafted"] = dump_messages([drafted])[0]
    return out
