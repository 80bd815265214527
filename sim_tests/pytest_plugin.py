"""pytest plugin (entry point ``rein``): scenarios of a suite as test items.

    pytest --rein-suite smoke --rein-agent scripted
    pytest --rein-suite my_suite.yaml --rein-agent my_pkg.agent:answer --rein-arms bare,rein --rein-trials 3

Each item is one trial of one scenario under one arm; it passes when every success criterion
holds, fails with the scorers' reasons and the end of the transcript, and errors when the agent
endpoint failed (the trial had no verdict). Suite files are collected like test files; with
``--rein-suite`` and no test paths on the command line, only the suites are collected. ``--rein-out DIR`` also writes the run log and
reports.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

_STATE = pytest.StashKey[dict]()
_PATHS = pytest.StashKey[list]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rein", "rein simulated-failure suites")
    group.addoption("--rein-suite", action="append", default=[], metavar="PATH",
                    help="a shipped suite name, a suite/scenario YAML file or a folder; collect its scenarios")
    group.addoption("--rein-agent", default=None, metavar="SPEC",
                    help="reference[:MODEL] (default), scripted, http(s)://host/v1, or pkg.module:attr")
    group.addoption("--rein-arms", default=None, metavar="ARMS",
                    help="comma list of bare, rein, prompt (as `rein sim run --arms`; default: bare)")
    group.addoption("--rein-arm", action="append", default=[], metavar="ARM",
                    help="one arm; repeat for several (the same as --rein-arms)")
    group.addoption("--rein-policy", default="default", help="policy of the rein and prompt arms")
    group.addoption("--rein-model", default=None,
                    help="model for rein's own calls (a URL, a litellm model or 'local'); unset: rules only")
    group.addoption("--rein-user", default="scripted", choices=["scripted", "llm"])
    group.addoption("--rein-trials", type=int, default=1, help="trials per scenario and arm")
    group.addoption("--rein-timeout", type=float, default=120.0, help="seconds per agent call")
    group.addoption("--rein-out", default=None, metavar="DIR", help="also write run.json and reports here")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rein_scenario: a rein simulated-failure scenario")
    specs = config.getoption("rein_suite")
    if not specs:
        return
    from sim_tests.scenario import ScenarioError, suite_path

    try:
        paths = [suite_path(spec).resolve() for spec in specs]
    except ScenarioError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_PATHS] = paths
    # The suites are collected like test files: `pytest --rein-suite X` alone runs only them.
    extra = [str(p) for p in paths]
    config.args = ([*config.args, *extra] if config.args_source == pytest.Config.ArgsSource.ARGS else extra)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    paths = parent.config.stash.get(_PATHS, None)
    if not paths or file_path.suffix not in (".yaml", ".yml"):
        return None
    resolved = file_path.resolve()
    if any(resolved == p or p in resolved.parents for p in paths):
        return SuiteFile.from_parent(parent, path=file_path)
    return None


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, arm: Any, trial: int, scorers: Any = None, **kw: Any):
        super().__init__(**kw)
        self.scenario, self.arm, self.trial, self.scorers = scenario, arm, trial, scorers
        self.record: Any = None
        self.add_marker(pytest.mark.rein_scenario)

    def runtest(self) -> None:
        from sim_tests.trial import CallPolicy, run_trial
        from sim_tests.runner import make_user
        from sim_tests.scorers import expected_db_hash

        state = self.config.stash[_STATE]
        user = make_user(state["user"], self.scenario, state.get("user_model"))
        work = run_trial(self.scenario, self.arm, state["agent"], user, self.trial,
                         CallPolicy(timeout_s=state["timeout"]), expected_db_hash(self.scenario), self.scorers)
        self.record = state["loop"].run_until_complete(work)
        state["records"].append(self.record)
        if self.record.status == "error":
            raise RuntimeError(f"trial error (no verdict): {self.record.error}")
        if self.record.status == "failed":
            raise ScenarioFailed()

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        record = self.record
        if record is None or not isinstance(excinfo.value, (ScenarioFailed, RuntimeError)):
            return super().repr_failure(excinfo)
        lines = [f"scenario {record.scenario_id} ({record.label}) under {record.arm}: {record.status}"]
        if record.error:
            lines.append(f"  error: {record.error}")
        lines += [f"  {s.name}: {s.detail}" for s in record.scores if not s.passed]
        lines.append("  transcript (last 8 messages):")
        for m in record.messages[-8:]:
            text = m.get("content") or ", ".join(c["function"]["name"] + "(...)" for c in m.get("tool_calls") or [])
            lines.append(f"    {m['role']:>9}: {' '.join(str(text).split())[:160]}")
        return "\n".join(lines)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"rein scenario {self.scenario.id} [{self.arm.name}#{self.trial}]"


class SuiteFile(pytest.File):
    def collect(self) -> list[pytest.Item]:
        from sim_tests.scenario import ScenarioError
        from sim_tests.suites import load_suite
        from sim_tests.scorers import resolve

        state = _state(self.config)
        try:
            suite = load_suite(str(self.path))
        except ScenarioError as e:
            raise self.CollectError(str(e)) from None
        trials, arms = state["trials"], state["arms"]
        # The suite's own (another suite's do not judge it); the action rules are the run's policy's.
        scorers = resolve(suite.scorer_specs(), {"policy": self.config.getoption("rein_policy")})
        for s in scorers:
            state["scorers"].setdefault(s.name, s.spec)
        named = trials > 1 or len(arms) > 1
        return [ScenarioItem.from_parent(self, name=f"{s.id}[{arm.name}#{k}]" if named else s.id,
                                         scenario=s, arm=arm, trial=k, scorers=scorers)
                for s in suite.scenarios for arm in arms for k in range(trials)]


def _state(config: pytest.Config) -> dict[str, Any]:
    """The agent, arms and event loop shared by every item (built once, on first use)."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        return state
    from middleware.models import resolve_model
    from sim_tests.agents import load_agent
    from sim_tests.arms import make_arms

    listed = [a.strip() for a in (config.getoption("rein_arms") or "").split(",") if a.strip()]
    arm_names = listed + [a for a in config.getoption("rein_arm") if a not in listed] or ["bare"]
    user = config.getoption("rein_user")
    spec = config.getoption("rein_model")
    try:
        # rein's own prompts go only to a model the operator named; unset, the arms run rules only.
        rein_model = resolve_model(spec) if spec and set(arm_names) - {"bare"} else None
        state = {"arms": make_arms(arm_names, config.getoption("rein_policy"), rein_model),
                 "agent": load_agent(config.getoption("rein_agent")), "user": user,
                 "user_model": resolve_model(None) if user == "llm" else None,
                 "timeout": config.getoption("rein_timeout"), "trials": config.getoption("rein_trials"),
                 "loop": asyncio.new_event_loop(), "records": [], "arm_names": arm_names,
                 "scorers": {}}
    except ValueError as e:
        raise pytest.UsageError(str(e)) from None
    config.stash[_STATE] = state
    return state


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    out = session.config.getoption("rein_out")
    if out and state["records"]:
        from sim_tests.log import RunConfig, RunLog, ScorerRecord
        from sim_tests.reports import write_reports

        config = RunConfig(suite=",".join(session.config.getoption("rein_suite")),
                           agent=session.config.getoption("rein_agent") or "reference",
                           user=state["user"], arms=state["arm_names"], trials=state["trials"],
                           policy=session.config.getoption("rein_policy"), concurrency=1)
        log = RunLog(config=config, status="complete", trials=state["records"],
                     scorers=[ScorerRecord(**spec) for spec in state["scorers"].values()])
        Path(out).mkdir(parents=True, exist_ok=True)
        log.save(Path(out) / "run.json")
        write_reports(log, Path(out))
    state["loop"].close()
