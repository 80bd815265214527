"""The runner: arms × trials, bounded concurrency, timeouts and retries, resume, Ctrl-C."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from middleware.models import FunctionModel
from sim_tests.agents import ModelAgent, ScriptedAgent
from sim_tests.arms import ReinArm, make_arms
from sim_tests.log import RunConfig, RunLog
from sim_tests.runner import LOG_FILE, TRIALS_FILE, Runner, finished_trials
from sim_tests.scenario import Suite
from sim_tests.suites import load_suite
def small_suite(*ids: str) -> Suite:
    by = {s.id: s for n in ("retail", "travel") for s in load_suite(n).scenarios}
    return Suite(name="small", scenarios=[by[i] for i in ids])


SUITE = small_suite("retail-cancel-kettle", "retail-cancel-kettle--vague_reference",
                    "retail-cancel-kettle--tool_failure", "travel-cancel-bergen--unsupported_operation")


class CountingAgent:
    """The scripted agent, counting its calls (to prove resumed runs skip finished trials)."""

    name = "counting"

    def __init__(self):
        self.calls = 0
        self.inner = ScriptedAgent()

    def bind(self, env):
        model = self.inner.bind(env)
        outer = self

        async def decide(request):
            outer.calls += 1
            return (await model.complete(request)).message
        return FunctionModel(decide)


def config(**kw) -> RunConfig:
    return RunConfig(suite="small", agent="scripted", **{"arms": ["bare"], "policy": "structural", **kw})


async def test_runs_every_scenario_k_times_under_each_arm_and_writes_the_log(tmp_path):
    arms = make_arms(["bare", "rein", "prompt"], "structural")
    log = await Runner(SUITE, ScriptedAgent(), arms, config(arms=["bare", "rein", "prompt"], trials=2),
                       out_dir=tmp_path, progress=None).run()
    assert log.status == "complete" and len(log.trials) == 4 * 3 * 2
    assert {(t.arm, t.trial) for t in log.trials} == {(a, k) for a in ("bare", "rein", "prompt") for k in (0, 1)}
    by = {(t.scenario_id, t.arm, t.trial): t for t in log.trials}
    assert by[("retail-cancel-kettle", "bare", 0)].status == "passed"
    assert by[("retail-cancel-kettle--vague_reference", "bare", 1)].status == "failed"
    # the rein arm ran the policy's pipeline: the injected tool failure was diagnosed
    diagnosed = [turn.diagnosis for turn in by[("retail-cancel-kettle--tool_failure", "rein", 0)].turns]
    assert any(d and any(e["type"] == "tool_failure" for e in d["errors"]) for d in diagnosed)
    assert all(turn.diagnosis is None for turn in by[("retail-cancel-kettle", "bare", 0)].turns)
    saved = RunLog.load(tmp_path / LOG_FILE)
    assert saved.trials == log.trials and saved.scenarios == SUITE.scenarios
    assert len((tmp_path / TRIALS_FILE).read_text().splitlines()) == 24
    record = by[("retail-cancel-kettle", "bare", 0)]
    assert record.turns[0].prompt_tokens == 1 and record.messages[0]["role"] == "system"
    assert [c.name for c in record.tool_calls] == ["cancel_pending_order"]


def test_prompt_arm_is_the_policy_with_the_system_note_strategy():
    rein, prompt = make_arms(["rein", "prompt"], "default")
    assert isinstance(prompt, ReinArm) and prompt.policy.inception.strategy == "system_note"
    assert rein.policy.inception.strategy == "think_trace"
    assert prompt.policy.taxonomy == rein.policy.taxonomy
    with pytest.raises(ValueError, match="unknown arm"):
        make_arms(["bare", "magic"])


async def test_concurrency_is_bounded():
    in_flight = peak = 0

    async def slow(request):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return "###"  # plain text: the scripted user goes on, then stops

    suite = small_suite("retail-cancel-kettle", "retail-address-lamp", "retail-return-pan", "retail-cancel-vase",
                        "travel-cancel-bergen", "travel-move-flight")
    log = await Runner(suite, ModelAgent(FunctionModel(slow)), make_arms(["bare"]), config(concurrency=3),
                       progress=None).run()
    assert len(log.trials) == 6 and peak == 3


async def test_a_hanging_agent_is_retried_then_recorded_as_an_error(tmp_path):
    attempts = 0

    async def hang(request):
        nonlocal attempts
        attempts += 1
        await asyncio.sleep(5)

    runner = Runner(small_suite("retail-cancel-kettle"), ModelAgent(FunctionModel(hang)), make_arms(["bare"]),
                    config(timeout_s=0.05, retries=2), out_dir=tmp_path, progress=None)
    runner.calls.backoff_s = 0.0
    log = await runner.run()
    (t,) = log.trials
    assert t.status == "error" and "timed out after 0.05s" in t.error and attempts == 3
    assert log.status == "complete"  # one broken trial does not stop the run


async def test_a_rerun_skips_finished_trials_and_retries_errored_ones(tmp_path):
    agent = CountingAgent()
    await Runner(SUITE, agent, make_arms(["bare"]), config(trials=2), out_dir=tmp_path, progress=None).run()
    first_calls = agent.calls
    assert first_calls > 0
    again = await Runner(SUITE, agent, make_arms(["bare"]), config(trials=2), out_dir=tmp_path, progress=None).run()
    assert agent.calls == first_calls and len(again.trials) == 8
    # more trials: only the new ones run
    more = await Runner(SUITE, agent, make_arms(["bare"]), config(trials=3), out_dir=tmp_path, progress=None).run()
    assert len(more.trials) == 12 and agent.calls > first_calls
    # an errored trial on disk is not "finished": it runs again
    lines = (tmp_path / TRIALS_FILE).read_text().splitlines()
    broken = json.loads(lines[0])
    broken.update(status="error", error="endpoint down", trial=7)
    (tmp_path / TRIALS_FILE).write_text("\n".join(lines + [json.dumps(broken), "{cut sho"]) + "\n")
    done = finished_trials(tmp_path)
    assert len(done) == 12 and not any(k.endswith("|7") for k in done)


async def test_interrupting_keeps_finished_trials_and_resume_completes(tmp_path):
    class GatedAgent(CountingAgent):
        """The first two trials run; the third hangs until the run is interrupted."""
        bound = 0

        def bind(self, env):
            GatedAgent.bound += 1
            if GatedAgent.bound <= 2:
                return super().bind(env)
            return FunctionModel(lambda request: asyncio.sleep(60))

    suite = small_suite("retail-cancel-kettle", "retail-address-lamp", "retail-return-pan", "retail-cancel-vase")
    runner = Runner(suite, GatedAgent(), make_arms(["bare"]), config(concurrency=1), out_dir=tmp_path, progress=None)
    task = asyncio.create_task(runner.run())
    lines = tmp_path / TRIALS_FILE
    while not lines.exists() or len(lines.read_text().splitlines()) < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    task.cancel()  # what Ctrl-C does to asyncio.run's main task
    with pytest.raises(asyncio.CancelledError):
        await task
    saved = RunLog.load(tmp_path / LOG_FILE)
    assert saved.status == "interrupted" and len(saved.trials) == 2
    assert len(finished_trials(tmp_path)) == 2
    agent = CountingAgent()
    log = await Runner(suite, agent, make_arms(["bare"]), config(), out_dir=tmp_path, progress=None).run()
    assert log.status == "complete" and len(log.trials) == 4
    assert agent.calls > 0 and {t.scenario_id for t in log.trials} == {s.id for s in suite.scenarios}
    assert {t.scenario_id for t in log.trials[:2]} == {t.scenario_id for t in saved.trials}


async def test_progress_line_counts_verdicts(tmp_path):
    import io

    out = io.StringIO()
    await Runner(SUITE, ScriptedAgent(), make_arms(["bare"]), config(), progress=out).run()
    assert "4/4" in out.getvalue() and "passed 2" in out.getvalue() and out.getvalue().endswith("\n")
    assert Path(tmp_path).exists()


async def test_llm_user_runs_through_the_runner_and_its_failures_are_trial_errors():
    said = iter(["Hi, I'm u_ava. Please cancel order R1002, I no longer need it.", "Thanks! ###STOP###"])
    user_model = FunctionModel(lambda request: next(said))
    suite = small_suite("retail-cancel-kettle")
    log = await Runner(suite, ScriptedAgent(), make_arms(["bare"]), config(user="llm"), user_model=user_model,
                       progress=None).run()
    (t,) = log.trials
    assert t.status == "passed" and t.user_calls == 2 and t.ended_by == "stop"

    def down(request):
        from middleware.models import ModelError
        raise ModelError("user model offline", 502)

    log = await Runner(small_suite("retail-cancel-kettle", "retail-address-lamp"), ScriptedAgent(), make_arms(["bare"]),
                       config(user="llm"), user_model=FunctionModel(down), progress=None).run()
    assert [t.status for t in log.trials] == ["error", "error"] and "user model offline" in log.trials[0].error


@pytest.mark.parametrize("arm_name", ["bare", "rein", "prompt"])
async def test_each_arm_shows_the_agent_what_its_policy_says(arm_name):
    """After the injected tool failure, rein plants a plan as a think trace, the prompt arm as a
    system note, and the bare arm nothing — the A/B difference the runner measures."""
    from sim_tests.trial import run_trial
    from sim_tests.scorers import expected_db_hash
    from sim_tests.users import ScriptedUser

    (s,) = small_suite("retail-cancel-kettle--tool_failure").scenarios
    seen = []

    class Recording(ScriptedAgent):
        def bind(self, env):
            inner = super().bind(env)

            async def decide(request):
                seen.append(request)
                return (await inner.complete(request)).message
            return FunctionModel(decide)

    (arm,) = make_arms([arm_name], "structural")
    record = await run_trial(s, arm, Recording(), ScriptedUser(s), 0, expected_hash=expected_db_hash(s))
    thought = any(c.function.name == "think" for r in seen for m in r.messages for c in (getattr(m, "tool_calls", None) or []))
    noted = any("Recovery note (from rein)" in (r.messages[0].content or "") for r in seen)
    assert (thought, noted) == {"bare": (False, False), "rein": (True, False), "prompt": (False, True)}[arm_name]
    diagnosed = [t.diagnosis for t in record.turns if t.diagnosis and t.diagnosis["errors"]]
    assert bool(diagnosed) == (arm_name != "bare")
    # the think trace is rein's own: it never reaches the transcript the user saw
    assert not any(c["function"]["name"] == "think" for m in record.messages for c in m.get("tool_calls") or [])
