"""pytest plugin (entry point ``rein``): scenarios of a suite as test items.

    pytest --rein-suite smoke --rein-agent scripted
    pytest --rein-suite my_suite.yaml --rein-agent my_pkg.agent:answer --rein-arm rein --rein-trials 3

Each item is one trial of one scenario under one arm; it passes when every success criterion
holds, fails with the scorers' reasons and the end of the transcript, and errors when the agent
endpoint failed (the trial had no verdict). With ``--rein-suite`` and no test paths on the
command line, only the suites are collected. ``--rein-out DIR`` also writes the run log and
reports.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

_STATE = pytest.StashKey[dict]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rein", "rein simulated-failure suites")
    group.addoption("--rein-suite", action="append", default=[], metavar="PATH",
                    help="a shipped suite name, a suite/scenario YAML file or a folder; collect its scenarios")
    group.addoption("--rein-agent", default=None, metavar="SPEC",
                    help="reference[:MODEL] (default), scripted, http(s)://host/v1, or pkg.module:attr")
    group.addoption("--rein-arm", action="append", default=[], metavar="ARM",
                    help="bare (default), rein or prompt; repeat for several")
    group.addoption("--rein-policy", default="default", help="policy of the rein and prompt arms")
    group.addoption("--rein-model", default=None, help="model for rein's own calls (default: embedded)")
    group.addoption("--rein-user", default="scripted", choices=["scripted", "llm"])
    group.addoption("--rein-trials", type=int, default=1, help="trials per scenario and arm")
    group.addoption("--rein-timeout", type=float, default=120.0, help="seconds per agent call")
    group.addoption("--rein-out", default=None, metavar="DIR", help="also write run.json and reports here")


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # `pytest --rein-suite X` alone runs the suite, not the project's test folders as well.
    if config.getoption("rein_suite") and config.args_source != pytest.Config.ArgsSource.ARGS:
        return True
    return None


class ScenarioFailed(Exception):
    pass


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: Any, arm: Any, trial: int, **kw: Any):
        super().__init__(**kw)
        self.scenario, self.arm, self.trial = scenario, arm, trial
        self.record: Any = None
        self.add_marker(pytest.mark.rein_scenario)

    def runtest(self) -> None:
        from sim_tests.dialogue import CallPolicy, run_trial
        from sim_tests.runner import make_user
        from sim_tests.scorers import expected_db_hash

        state = self.config.stash[_STATE]
        user = make_user(state["user"], self.scenario, state.get("user_model"))
        work = run_trial(self.scenario, self.arm, state["agent"], user, self.trial,
                         CallPolicy(timeout_s=state["timeout"]), expected_db_hash(self.scenario))
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


class SuiteCollector(pytest.Collector):
    def __init__(self, *, suite: Any, arms: list[Any], trials: int, **kw: Any):
        super().__init__(**kw)
        self.suite, self.arms, self.trials = suite, arms, trials

    def collect(self) -> list[pytest.Item]:
        return [ScenarioItem.from_parent(self, name=f"{s.id}[{arm.name}#{k}]" if self.trials > 1 or len(self.arms) > 1
                                         else s.id, scenario=s, arm=arm, trial=k)
                for s in self.suite.scenarios for arm in self.arms for k in range(self.trials)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "rein_scenario: a rein simulated-failure scenario")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    specs = config.getoption("rein_suite")
    if not specs:
        return
    from middleware.models import resolve_model
    from sim_tests.agents import load_agent
    from sim_tests.arms import make_arms
    from sim_tests.scenario import ScenarioError, load_suite, suite_path

    arm_names = config.getoption("rein_arm") or ["bare"]
    try:
        suites = [(spec, load_suite(spec)) for spec in specs]
        rein_model = resolve_model(config.getoption("rein_model")) if set(arm_names) - {"bare"} else None
        arms = make_arms(arm_names, config.getoption("rein_policy"), rein_model)
        agent = load_agent(config.getoption("rein_agent"))
    except (ScenarioError, ValueError) as e:
        raise pytest.UsageError(str(e)) from None
    user = config.getoption("rein_user")
    config.stash[_STATE] = {"agent": agent, "user": user, "timeout": config.getoption("rein_timeout"),
                            "user_model": resolve_model(None) if user == "llm" else None,
                            "loop": asyncio.new_event_loop(), "records": [], "arms": arm_names, "suites": specs}
    for spec, suite in suites:
        node = SuiteCollector.from_parent(session, name=f"rein-suite:{suite.name}", nodeid=f"rein-suite:{suite.name}",
                                          suite=suite, arms=arms,
                                          trials=config.getoption("rein_trials"))
        node.path = suite_path(spec).resolve()
        items.extend(node.collect())


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None:
        return
    out = session.config.getoption("rein_out")
    if out and state["records"]:
        from sim_tests.log import RunConfig, RunLog
        from sim_tests.reports import write_reports

        config = RunConfig(suite=",".join(state["suites"]), agent=session.config.getoption("rein_agent") or "reference",
                           user=state["user"], arms=state["arms"], trials=session.config.getoption("rein_trials"),
                           policy=session.config.getoption("rein_policy"), concurrency=1)
        log = RunLog(config=config, status="complete", trials=state["records"])
        Path(out).mkdir(parents=True, exist_ok=True)
        log.save(Path(out) / "run.json")
        write_reports(log, Path(out))
    state["loop"].close()
