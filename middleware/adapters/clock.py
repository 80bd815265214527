"""The dialogue's time for the pack's action rules, from an SDK call to the pipeline: as the
request header the pack reads it from (``actions.now``), the way the proxy's clients send it."""
from __future__ import annotations

from datetime import datetime
from typing import Any


def now_headers(pipeline: Any, now: datetime | str | None) -> dict[str, str]:
    """``now`` under each header the pipeline reads a time from, else ``x-rein-now``.

    >>> class P: reads_headers = ["x-rein-now"]
    >>> now_headers(P(), datetime(2024, 5, 15, 15, 0)), now_headers(P(), None)
    ({'x-rein-now': '2024-05-15T15:00:00'}, {})
    """
    if now is None:
        return {}
    text = now.isoformat() if isinstance(now, datetime) else str(now)
    return {h: text for h in getattr(pipeline, "reads_headers", None) or ["x-rein-now"]}
