"""Progress of a run: a bar redrawn in place on a terminal, plain lines in a CI log, both with
elapsed time and ETA. A fake clock stands in for time, so nothing here depends on machine speed."""
from __future__ import annotations

import io
from types import SimpleNamespace

from sim_tests.agents import ScriptedAgent
from sim_tests.arms import make_arms
from sim_tests.log import RunConfig
from sim_tests.progress import Progress, duration
from sim_tests.runner import Runner
from sim_tests.suites import load_suite
class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def verdict(status: str):
    return SimpleNamespace(status=status)


def test_durations_read_short():
    assert [duration(s) for s in (0, 42.4, 185, 3720)] == ["0s", "42s", "3m05s", "1h02m"]


def test_terminal_gets_one_bar_redrawn_in_place_with_elapsed_and_eta():
    clock, out = Clock(), FakeTTY()
    progress = Progress(4, out, clock=clock)
    clock.now += 10
    progress.add(verdict("passed"))  # 1 of 4 in 10 s: 30 s to go
    first = out.getvalue()
    assert first.startswith("\rsim [######..................] 1/4") and "elapsed 10s" in first and "ETA 30s" in first
    for status in ("failed", "passed", "error"):
        clock.now += 10
        progress.add(verdict(status))
    progress.draw(final=True)
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # every redraw on the same line
    last = text.rsplit("\r", 1)[-1]
    assert "[########################] 4/4" in last and "passed 2  failed 1  error 1" in last
    assert "elapsed 40s" in last and "done" in last


def test_a_log_gets_plain_lines_without_carriage_returns():
    clock, out = Clock(), io.StringIO()
    progress = Progress(20, out, clock=clock)
    for _ in range(20):
        clock.now += 1
        progress.add(verdict("passed"))
    progress.draw(final=True)
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue() and "[" not in out.getvalue()
    # one line per tenth of the run (the first trial included), the last not repeated by the final draw
    assert 2 <= len(lines) <= 11 and lines[-1].startswith("sim: 20/20") and "elapsed 20s" in lines[-1]
    assert "ETA 19s" in lines[0] and all("ETA" in line for line in lines[:-1])


def test_a_slow_run_still_prints_between_tenths():
    clock, out = Clock(), io.StringIO()
    progress = Progress(1000, out, clock=clock)
    progress.add(verdict("passed"))
    clock.now += 60  # well under a tenth of the run, but a minute of silence
    progress.add(verdict("failed"))
    assert len(out.getvalue().splitlines()) == 2


def test_no_finished_trial_yet_has_no_eta():
    out = io.StringIO()
    Progress(3, out).draw(final=True)
    assert "0/3" in out.getvalue() and "ETA –" in out.getvalue()


async def test_the_runner_reports_progress_to_a_terminal():
    out = FakeTTY()
    suite = load_suite("retail")
    suite = suite.model_copy(update={"scenarios": suite.scenarios[:3]})
    await Runner(suite, ScriptedAgent(), make_arms(["bare"]), RunConfig(suite="retail", agent="scripted"),
                 progress=out).run()
    assert out.getvalue().count("\r") >= 1 and "3/3" in out.getvalue() and "elapsed" in out.getvalue()
