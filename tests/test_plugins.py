"""Plug-ins from outside rein: a detector, a refiner and a scorer, added through a policy file (the
proxy), through the SDK, and through a suite file; each changes what a user sees (a header, the
reply, the report). Load-time errors name the plug-in and the YAML line."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fake_upstream import asgi_client

import inception
import refiners
from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, ScriptedModel
from middleware.proxy import create_app
from policies.loader import PolicyError, load_policy, parse_policy
from policies.messages import UserMessage
from policies.plugins import PluginError
from policies.schema import Policy
from tests.plugin_examples import REFUND_PLAN, NoRefunds, Shouting, Untyped

URL = "/v1/chat/completions"
ASK = [{"role": "user", "content": "Can I get a refund for order W1001?"}]
LOUD = "YOUR REFUND IS NOT POSSIBLE HERE. PLEASE USE THE WEB FORM."
QUIET = "Your refund is not possible here. Please use the web form."


def pack(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\nextends: structural\n" + body)
    return path


class Recording:
    """An agent that answers LOUD and keeps what it was sent."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.model = FunctionModel(self._answer)

    def _answer(self, request):
        self.seen.append(request.model_dump_json())
        return LOUD


async def test_policy_plugins_reach_the_proxy(tmp_path):
    path = pack(tmp_path, 'plugins: ["tests.plugin_examples:NoRefunds", "tests.plugin_examples:Shouting"]\n')
    agent = Recording()
    app = create_app(Settings(policy=str(path)), Engine(agent.model, str(path)))
    async with asgi_client(app) as client:
        r = await client.post(URL, json={"model": "m", "messages": ASK})
    assert r.status_code == 200, r.text
    assert r.headers["x-rein-diagnosis"] == "refund_request"       # the detector's own taxonomy entry
    assert r.headers["x-rein-refined"] == "shouting"                # the refiner changed the reply
    assert r.json()["choices"][0]["message"]["content"] == QUIET
    # The plan of the detector's entry reached the agent (think_trace: a synthetic tool result).
    assert REFUND_PLAN in agent.seen[-1]


async def test_without_the_plugins_nothing_changes(tmp_path):
    agent = ScriptedModel([LOUD])
    app = create_app(Settings(policy="structural"), Engine(agent, "structural"))
    async with asgi_client(app) as client:
        r = await client.post(URL, json={"model": "m", "messages": ASK})
    assert r.headers["x-rein-diagnosis"] == "none" and r.headers["x-rein-refined"] == "none"
    assert r.json()["choices"][0]["message"]["content"] == LOUD


def test_a_detector_reporting_an_undefined_type_is_a_load_error_on_its_line(tmp_path):
    path = pack(tmp_path, 'plugins:\n  - "tests.plugin_examples:NoRefunds"\n  - "tests.plugin_examples:Untyped"\n')
    with pytest.raises(PolicyError) as e:
        load_policy(str(path))
    assert "plugins[1] (line 5)" in str(e.value) and "'made_up_error'" in str(e.value)


def test_an_unimportable_plugin_and_an_unknown_refiner_name_are_load_errors(tmp_path):
    with pytest.raises(PolicyError, match=r"plugins\[0\] \(line 3\).*cannot import 'no_such_module'"):
        parse_policy('name: p\nplugins:\n  - "no_such_module:Thing"\n', "p.yaml")
    with pytest.raises(PolicyError, match=r"refiners\.refiners\[1\] \(line 2\).*'typo'.*known: factuality"):
        parse_policy('name: p\nrefiners: {enabled: true, refiners: [factuality, typo]}\n', "p.yaml")
    # Named in the order, the plug-in's name is known; it runs where the policy puts it.
    policy = parse_policy('name: p\nplugins: ["tests.plugin_examples:Shouting"]\n'
                          'refiners: {enabled: true, llm: true, refiners: [shouting, factuality]}\n')
    assert list(refiners.build(policy, ScriptedModel([])).refiners) == ["shouting", "factuality"]


def test_builders_refuse_what_the_loader_refuses():
    with pytest.raises(PluginError, match="made_up_error"):
        inception.build(load_policy("structural"), detectors=[Untyped()])
    with pytest.raises(PluginError, match="defined twice"):
        refiners.build(load_policy("structural"), refiners=[Shouting(), Shouting()])

    class Sync(Shouting):
        def revise(self, turn, text):  # type: ignore[override]
            return text
    with pytest.raises(PluginError, match="async"):
        refiners.build(load_policy("structural"), refiners=[Sync()])


async def test_an_undeclared_detection_is_noted_not_dropped_silently():
    class Liar(NoRefunds):
        def detect(self, dialogue):
            return [*super().detect(dialogue), inception.Detection(type="something_else")]
    cascade = inception.build(Policy(name="p"), detectors=[Liar()])
    d = await cascade.diagnose([UserMessage(content="a refund please")], None)
    assert d.header() == "refund_request"
    assert any("something_else, not in the taxonomy" in n for n in d.notes)


# ---- scorers: a suite names its own; the run log and the report say which ran -------------------
def _suite_file(tmp_path: Path, scorers: str) -> Path:
    from sim_tests.scenario import Suite, dump_suite
    from sim_tests.suites import load_suite
    kettle = next(s for s in load_suite("retail").scenarios if s.id == "retail-cancel-kettle")
    path = tmp_path / "suite.yaml"
    path.write_text(scorers + dump_suite(Suite(name="mine", scenarios=[kettle])))
    return path


async def run_suite(path: Path, out: Path):
    from sim_tests.agents import ScriptedAgent
    from sim_tests.arms import make_arms
    from sim_tests.log import RunConfig
    from sim_tests.reports import write_reports
    from sim_tests.runner import Runner
    from sim_tests.suites import load_suite
    suite = load_suite(str(path))
    log = await Runner(suite, ScriptedAgent(), make_arms(["bare"], "structural"),
                       RunConfig(suite="mine", agent="scripted", arms=["bare"], policy="structural"),
                       out_dir=out, progress=None).run()
    return log, write_reports(log, out)["markdown"].read_text()


async def test_a_suite_file_names_a_custom_scorer_and_the_report_shows_its_verdict(tmp_path):
    path = _suite_file(tmp_path, 'scorers:\n  - db_state\n'
                                 '  - {name: "tests.plugin_examples:mentions", args: {word: "abracadabra"}}\n')
    log, report = await run_suite(path, tmp_path / "out")
    assert [(s.name, s.args) for s in log.scorers] == [("db_state", {}), ("mentions", {"word": "abracadabra"})]
    (trial,) = log.trials
    assert [s.name for s in trial.scores] == ["db_state", "mentions"] and trial.status == "failed"
    assert "`mentions` (word='abracadabra')" in report and "mentions: never said 'abracadabra'" in report


async def test_registering_a_scorer_changes_no_other_suite(tmp_path):
    import tests.plugin_examples  # noqa: F401  (registers `mentions`)
    log, report = await run_suite(_suite_file(tmp_path, ""), tmp_path / "out")
    assert [s.name for s in log.scorers] == ["db_state", "communicated", "recovery", "turn_limit", "patience", "actions"]
    assert log.trials[0].status == "passed" and "mentions" not in report


def test_an_unknown_scorer_is_a_suite_load_error(tmp_path):
    from sim_tests.scenario import ScenarioError
    from sim_tests.suites import load_suite
    with pytest.raises(ScenarioError, match="unknown scorer 'no_such_scorer'"):
        load_suite(str(_suite_file(tmp_path, "scorers: [no_such_scorer]\n")))


async def test_a_custom_scorer_through_the_python_api(tmp_path):
    from sim_tests.agents import ScriptedAgent
    from sim_tests.arms import make_arms
    from sim_tests.log import RunConfig
    from sim_tests.runner import Runner
    from sim_tests.suites import load_suite
    from tests.plugin_examples import mentions

    suite = load_suite(str(_suite_file(tmp_path, "")))
    log = await Runner(suite, ScriptedAgent(), make_arms(["bare"], "structural"),
                       RunConfig(suite="mine", agent="scripted", arms=["bare"]), progress=None,
                       scorers=[mentions(word="kettle")]).run()
    assert [s.name for s in log.scorers] == ["mentions"] and log.trials[0].scores[0].name == "mentions"


# ---- the SDK: the same plug-ins as objects, on every path ----------------------------------------
def test_sdk_plugins_change_the_reply_and_the_report():
    from middleware import Rein

    rein = Rein(policy="structural", model=ScriptedModel([LOUD]), detectors=[NoRefunds()], refiners=[Shouting()])
    reply = rein.complete(ASK)
    assert reply.content == QUIET
    assert reply.rein.diagnosis.header() == "refund_request" and [s.name for s in reply.rein.steps] == ["shouting"]

    @rein.guard
    def agent(messages, tools=None):
        return LOUD

    out = agent(ASK)
    assert out == QUIET and out.rein.diagnosis.header() == "refund_request"


def test_sdk_plugins_with_a_policy_object_keep_the_persona_store_and_the_order(tmp_path):
    from middleware import Rein

    policy = Policy(name="mine", refiners={"enabled": True, "llm": True, "refiners": ["shouting", "factuality"]})
    rein = Rein(policy="structural", model=ScriptedModel([LOUD]), rein_model=ScriptedModel([], cycle=True),
                personas=str(tmp_path / "p.db"), refiners=[Shouting()])

    @rein.guard(policy=policy)
    def agent(messages, tools=None):
        return LOUD

    assert agent.pipeline.profiles is rein.engine.profiles is not None  # was dropped on this path
    assert list(agent.pipeline.refinery.refiners) == ["shouting", "factuality"]
    assert agent(ASK) == QUIET
    with pytest.raises(PluginError, match="made_up_error"):
        Rein(policy="structural", model=ScriptedModel([LOUD]), detectors=[Untyped()])
