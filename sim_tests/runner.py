"""The runner: every scenario k times under each arm, with bounded concurrency, per-call
timeouts and retries, progress with elapsed time and ETA (``sim_tests.progress``), and
resumable output.

The first trial runs alone: when it could not connect to the agent at all, no other trial could
either, so the run stops there (``status: stopped``, ``stopped_because``) instead of printing the
same connection error for every trial.

Each finished trial is appended to ``DIR/trials.jsonl`` at once, so an interrupted run (Ctrl-C)
keeps every finished trial, and a re-run with the same ``DIR`` skips them (trials that ended in
an error are tried again). ``DIR/run.json`` holds the whole log when the run ends or stops.
Example::

    log = await Runner(suite, ScriptedAgent(), make_arms(["bare"]), RunConfig(suite="smoke", agent="scripted"),
                       out_dir=Path("out")).run()
"""
from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from policies.chat_model import ChatModel
from sim_tests.agents import AgentUnderTest
from sim_tests.arms import Arm
from sim_tests.trial import CallPolicy, run_trial
from sim_tests.log import RunConfig, RunLog, ScorerRecord, TrialRecord, trial_key
from sim_tests.progress import Progress
from sim_tests.satisfaction import judge_satisfaction
from sim_tests.scenario import Scenario, Suite
from sim_tests.scorers import Scorer, expected_db_hash, resolve
from sim_tests.users import LLMUser, ScriptedUser, UserSimulator

TRIALS_FILE = "trials.jsonl"
LOG_FILE = "run.json"


def make_user(kind: str, scenario: Scenario, model: ChatModel | None = None) -> UserSimulator:
    if kind == "scripted":
        return ScriptedUser(scenario)
    if kind == "llm":
        if model is None:
            raise ValueError("the llm user simulator needs a model")
        return LLMUser(scenario, model)
    raise ValueError(f"unknown user simulator {kind!r} (scripted or llm)")


async def judge(model: ChatModel, record: TrialRecord) -> None:
    """Add the judge's satisfaction rating; a judge that fails leaves the rules' rating alone."""
    try:
        rating = await judge_satisfaction(model, record)
    except Exception:  # the judge is an extra, never a reason to lose a trial
        return
    if rating is not None:
        record.satisfaction = [s for s in record.satisfaction if s.source != "judge"] + [rating]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def finished_trials(out_dir: Path) -> dict[str, TrialRecord]:
    """Trials with a verdict already on disk (the JSON lines, else a previous run.json)."""
    found: dict[str, TrialRecord] = {}
    lines = out_dir / TRIALS_FILE
    if lines.exists():
        for line in lines.read_text().splitlines():
            if not line.strip():
                continue
            try:
                record = TrialRecord.model_validate_json(line)
            except ValueError:
                continue  # a line cut short by a kill: that trial runs again
            found[record.key] = record
    elif (out_dir / LOG_FILE).exists():
        found = {t.key: t for t in RunLog.load(out_dir / LOG_FILE).trials}
    return {k: t for k, t in found.items() if t.status != "error"}


class Runner:
    def __init__(self, suite: Suite, agent: AgentUnderTest, arms: list[Arm], config: RunConfig,
                 out_dir: Path | None = None, user_model: ChatModel | None = None,
                 progress: TextIO | None = sys.stderr, judge_model: ChatModel | None = None,
                 scorers: list[Scorer] | None = None):
        """``scorers``: what judges each trial; default, the ones the suite names (else ``DEFAULT``)."""
        self.suite, self.agent, self.arms, self.config = suite, agent, arms, config
        self.scorers = scorers if scorers is not None else resolve(suite.scorer_specs(), {"policy": config.policy})
        self.out_dir = Path(out_dir) if out_dir else None
        self.user_model = user_model
        self.judge_model = judge_model  # rates each finished dialogue's satisfaction beside the rules
        self.progress_stream = progress
        self.calls = CallPolicy(timeout_s=config.timeout_s, retries=config.retries)
        self.log: RunLog | None = None  # set when run() ends, even by Ctrl-C

    def _pending(self, done: dict[str, TrialRecord]) -> list[tuple[Scenario, Arm, int]]:
        return [(s, arm, k) for s in self.suite.scenarios for arm in self.arms for k in range(self.config.trials)
                if trial_key(s.id, arm.name, k) not in done]

    async def run(self) -> RunLog:
        done = finished_trials(self.out_dir) if self.out_dir and self.out_dir.exists() else {}
        if self.out_dir:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        hashes = {s.id: expected_db_hash(s) for s in self.suite.scenarios}  # a bad gold action fails here
        log = RunLog(config=self.config, started_at=_now(), scenarios=self.suite.scenarios,
                     scorers=[ScorerRecord(**s.spec) for s in self.scorers])
        wanted = {trial_key(s.id, a.name, k) for s in self.suite.scenarios for a in self.arms
                  for k in range(self.config.trials)}
        results: dict[str, TrialRecord] = {k: t for k, t in done.items() if k in wanted}
        pending = self._pending(done)
        progress = Progress(len(pending), self.progress_stream)
        gate = asyncio.Semaphore(max(1, self.config.concurrency))
        sink = (self.out_dir / TRIALS_FILE).open("a") if self.out_dir else None

        async def one(scenario: Scenario, arm: Arm, k: int) -> None:
            async with gate:
                user = make_user(self.config.user, scenario, self.user_model)
                record = await run_trial(scenario, arm, self.agent, user, k, self.calls, hashes[scenario.id],
                                         self.scorers)
                if self.judge_model is not None and record.status != "error":
                    await judge(self.judge_model, record)
            results[record.key] = record
            if sink is not None:
                sink.write(record.model_dump_json() + "\n")
                sink.flush()
            progress.add(record)

        tasks: list[asyncio.Future] = []
        try:
            if pending:  # the first-call check: one trial before the rest
                await one(*pending[0])
                first = results[trial_key(pending[0][0].id, pending[0][1].name, pending[0][2])]
                if first.agent_unreachable:
                    log.status = "stopped"
                    log.stopped_because = (f"the agent could not be reached ({first.error}); "
                                           f"{len(pending) - 1} other trials not run")
                    return log
            tasks = [asyncio.ensure_future(one(*p)) for p in pending[1:]]
            await asyncio.gather(*tasks)
            log.status = "complete"
        except (asyncio.CancelledError, KeyboardInterrupt):
            for t in tasks:
                t.cancel()
            log.status = "interrupted"
            raise
        finally:
            progress.draw(final=True)
            if sink is not None:
                sink.close()
            log.finished_at = _now()
            log.trials = self._ordered(results)
            if self.out_dir:
                log.save(self.out_dir / LOG_FILE)
            self.log = log
        return log

    def _ordered(self, results: dict[str, TrialRecord]) -> list[TrialRecord]:
        order = {s.id: i for i, s in enumerate(self.suite.scenarios)}
        arms = {a.name: i for i, a in enumerate(self.arms)}
        return sorted(results.values(), key=lambda t: (order.get(t.scenario_id, 1 << 30),
                                                        arms.get(t.arm, 99), t.trial))
