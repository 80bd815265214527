"""Where a run is: trials done, verdicts so far, elapsed time and an estimate of what is left.

On a terminal one bar is redrawn in place (carriage return); anywhere else — a CI log, a file,
a pipe — a carriage return would pile every redraw onto one unreadable line, so plain lines are
printed instead, one per tenth of the run (or every ``PLAIN_EVERY_S`` seconds) and one at the end.
Example::

    progress = Progress(total=40, stream=sys.stderr)
    progress.add(record)          # after each finished trial
    progress.draw(final=True)     # when the run ends or stops
"""
from __future__ import annotations

import time
from typing import Callable, TextIO

BAR_WIDTH = 24
REDRAW_S = 0.2  # a bar redrawn faster than the eye reads only costs terminal time
PLAIN_EVERY_S = 30.0  # a slow run still shows it is alive in a CI log


def duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``: short enough for one status line."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def is_tty(stream: TextIO | None) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # a closed or file-like stream without isatty
        return False


class Progress:
    """Counts verdicts and draws them with elapsed time and ETA; ``tty=None`` asks the stream."""

    def __init__(self, total: int, stream: TextIO | None, tty: bool | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total, self.stream, self.clock = total, stream, clock
        self.tty = is_tty(stream) if tty is None else tty
        self.counts = {"passed": 0, "failed": 0, "error": 0}
        self.started = clock()
        self._drawn_at = float("-inf")
        self._drawn_tenth = 0
        self._drawn_done = -1

    @property
    def done(self) -> int:
        return sum(self.counts.values())

    def add(self, record) -> None:
        self.counts[record.status] += 1
        self.draw()

    def status(self) -> str:
        """The words of the line, bar excluded: counts, verdicts, elapsed, ETA."""
        elapsed = self.clock() - self.started
        done = self.done
        if done >= self.total:
            eta = "done"
        elif done == 0:
            eta = "ETA –"  # no finished trial yet: no rate to estimate from
        else:
            eta = f"ETA {duration(elapsed / done * (self.total - done))}"
        c = self.counts
        return (f"{done}/{self.total}  passed {c['passed']}  failed {c['failed']}  error {c['error']}  "
                f"elapsed {duration(elapsed)}  {eta}")

    def draw(self, final: bool = False) -> None:
        if self.stream is None:
            return
        now = self.clock()
        if self.tty:
            if not final and now - self._drawn_at < REDRAW_S:
                return
            filled = BAR_WIDTH * self.done // self.total if self.total else BAR_WIDTH
            line = f"\rsim [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.status()}\x1b[K"
            self.stream.write(line + ("\n" if final else ""))
        else:
            tenth = 10 * self.done // self.total if self.total else 10
            if final and self.done == self._drawn_done:
                return  # the last line already says it
            if not final and tenth <= self._drawn_tenth and now - self._drawn_at < PLAIN_EVERY_S:
                return
            self._drawn_tenth = tenth
            self.stream.write(f"sim: {self.status()}\n")
        self._drawn_at, self._drawn_done = now, self.done
        self.stream.flush()
