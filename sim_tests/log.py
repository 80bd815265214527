"""The run log: every trial's messages, tool calls, diagnoses, refinements, tokens and timings.

It is the one artefact of a run (``DIR/run.json``); reports are rendered from it, so a report
can be re-made without re-running anything (``rein sim report DIR/run.json``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from sim_tests.domains import ToolCallRecord
from sim_tests.scenario import Scenario

Status = Literal["passed", "failed", "error"]
EndedBy = Literal["stop", "transfer", "out_of_scope", "gave_up", "turn_limit", "error"]


class Score(BaseModel):
    name: str
    passed: bool
    detail: str = ""
    # A process score (how the agent got there, e.g. the pack's action rules) is reported beside the
    # verdict and does not decide it: a trial that passed while one failed is a lucky pass.
    process: bool = False
    rules: list[str] = Field(default_factory=list, description="rule ids broken, one per violation")


class Satisfaction(BaseModel):
    """Simulated user satisfaction of one dialogue, 1-5 (``sim_tests.satisfaction``)."""
    score: int
    source: Literal["rules", "judge"] = "rules"
    signals: dict[str, int] = Field(default_factory=dict)
    reason: str = ""


class TurnRecord(BaseModel):
    """One call to the agent (an arm's turn): what rein decided, what it cost, how long it took."""
    user_turn: int
    latency_ms: float
    agent_calls: int = 1
    rein_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    diagnosis: dict[str, Any] | None = None
    refinement: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)


class TrialRecord(BaseModel):
    scenario_id: str
    label: str
    domain: str
    arm: str
    trait: str = "cooperative"
    trial: int
    status: Status
    error: str | None = None
    agent_unreachable: bool = Field(False, description="the error was no connection to the agent at all")
    ended_by: EndedBy = "stop"
    user_turns: int = 0
    messages: list[dict[str, Any]] = Field(default_factory=list)
    tool_calls: list[ToolCallRecord] = Field(default_factory=list)
    turns: list[TurnRecord] = Field(default_factory=list)
    scores: list[Score] = Field(default_factory=list)
    final_db_hash: str | None = None
    expected_db_hash: str | None = None
    user_calls: int = 0
    duration_s: float = 0.0
    satisfaction: list[Satisfaction] = Field(default_factory=list, description="By rules, and by the judge if set")

    @property
    def key(self) -> str:
        return trial_key(self.scenario_id, self.arm, self.trial)

    @property
    def agent_calls(self) -> int:
        return sum(t.agent_calls for t in self.turns)

    @property
    def rein_calls(self) -> int:
        return sum(t.rein_calls for t in self.turns)

    @property
    def tokens(self) -> int:
        return sum(t.prompt_tokens + t.completion_tokens for t in self.turns)

    @property
    def reason(self) -> str:
        """Why the trial did not pass, in its failing scorers' words (or its error); '' if it passed."""
        if self.status == "error":
            return self.error or "error"
        return "; ".join(f"{s.name}: {s.detail}" for s in self.scores if not s.passed and not s.process)

    @property
    def broken_rules(self) -> list[str]:
        """The rule ids the process scores found broken, one per violation."""
        return [r for s in self.scores if s.process for r in s.rules]

    @property
    def lucky(self) -> bool:
        """Passed by its outcome while breaking a rule on the way."""
        return self.status == "passed" and any(s.process and not s.passed for s in self.scores)


def trial_key(scenario_id: str, arm: str, trial: int) -> str:
    return f"{scenario_id}|{arm}|{trial}"


class RunConfig(BaseModel):
    suite: str
    agent: str
    user: Literal["scripted", "llm"] = "scripted"
    arms: list[str] = Field(default_factory=lambda: ["bare", "rein", "prompt"])
    policy: str = "default"
    trials: int = 1
    concurrency: int = 4
    timeout_s: float = 120.0
    retries: int = 1
    rein_model: str | None = None
    user_model: str | None = None
    judge_model: str | None = None


class ScorerRecord(BaseModel):
    """A scorer that judged the run's trials, with the arguments it was made with."""
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class RunLog(BaseModel):
    version: int = 1
    config: RunConfig
    scorers: list[ScorerRecord] = Field(default_factory=list, description="What judged every trial")
    status: Literal["running", "complete", "interrupted", "stopped"] = "running"
    stopped_because: str | None = Field(None, description="why a stopped run ran no more trials")
    started_at: str = ""
    finished_at: str | None = None
    scenarios: list[Scenario] = Field(default_factory=list)
    trials: list[TrialRecord] = Field(default_factory=list)

    def save(self, path: Path) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.model_dump_json(indent=1))
        tmp.replace(path)  # a reader never sees half a file, even after Ctrl-C

    @classmethod
    def load(cls, path: Path) -> "RunLog":
        return cls.model_validate_json(Path(path).read_text())
