"""Agents that run their own tool loop (the reference LangChain agent, graph factories) get rein in
front of their model, as a deployment would: rein sees each model call of the loop, tool
failures included, offers its recovery tools, and answers calls to them itself."""
from __future__ import annotations

import pytest
from langchain.agents import create_agent

from middleware.adapters.lc_model import LangChainChatModel
from middleware.models import ScriptedModel, tool_call
from sim_tests.agents import GraphAgent, ReferenceAgent
from sim_tests.arms import make_arms
from sim_tests.trial import CallPolicy, run_trial
from sim_tests.log import RunLog
from sim_tests.suites import load_suite
from sim_tests.scorers import expected_db_hash
from sim_tests.users import ScriptedUser

CANCEL = tool_call("cancel_pending_order", {"order_id": "R1002", "reason": "no_longer_needed"})


def scenario(i: str = "retail-cancel-kettle--tool_failure"):
    return next(s for s in load_suite("retail").scenarios if s.id == i)


def retrying_model() -> ScriptedModel:
    """Cancels (the environment fails it once), says so, retries when asked, reports success."""
    return ScriptedModel([CANCEL, "Sorry, the order service had a problem. Shall I retry?",
                          CANCEL, "Order R1002 has been cancelled; 39.0 will be refunded.",
                          "Yes, it has gone through."])


async def trial(agent, arm_name: str, i: str = "retail-cancel-kettle--tool_failure"):
    s = scenario(i)
    (arm,) = make_arms([arm_name], "structural")
    return await run_trial(s, arm, agent, ScriptedUser(s), 0, CallPolicy(timeout_s=10, retries=0),
                           expected_db_hash(s))


def thought(request) -> bool:
    return any(c.function.name == "think" for m in request.messages for c in getattr(m, "tool_calls", None) or [])


def diagnosed(record, kind: str = "tool_failure") -> bool:
    return any(e["type"] == kind for t in record.turns for e in (t.diagnosis or {}).get("errors", []))


def make_graph(model):
    """A graph factory that lets the harness wrap its model (``wrap``), as a deployment would."""
    def make(tools, wrap):
        return create_agent(LangChainChatModel(chat_model=wrap(model)), tools=tools)
    return make


@pytest.mark.parametrize("kind", ["reference", "graph"])
@pytest.mark.parametrize("arm_name", ["bare", "rein", "prompt"])
async def test_rein_sees_a_tool_failure_inside_the_agents_own_loop(arm_name, kind):
    model = retrying_model()
    agent = ReferenceAgent(model) if kind == "reference" else GraphAgent(make_graph(model), name="make_graph")
    record = await trial(agent, arm_name)
    assert record.status == "passed", (record.error, record.scores)
    assert [(c.name, c.injected) for c in record.tool_calls] == [("cancel_pending_order", True),
                                                                  ("cancel_pending_order", False)]
    # the call right after the failed tool result carries rein's plan: a think trace under rein,
    # a system note under the prompt baseline, nothing under bare
    after_failure = model.requests[1]
    assert "503" in [m for m in after_failure.messages if m.role == "tool"][0].content
    assert thought(after_failure) == (arm_name == "rein")
    assert ("Recovery note (from rein)" in after_failure.messages[0].content) == (arm_name == "prompt")
    assert not thought(model.requests[0])
    offered = {t["function"]["name"] for t in after_failure.tools}
    assert ("report_internal_error" in offered) == (arm_name != "bare")
    assert diagnosed(record) == (arm_name != "bare")
    # rein's own tool traffic never reaches the transcript the user saw
    assert not any(c["function"]["name"] == "think" for m in record.messages for c in m.get("tool_calls") or [])
    # both arms count the agent's model calls, so the A/B cost columns compare like with like
    assert [t.agent_calls for t in record.turns] == [2, 2, 1]


async def test_a_call_to_a_rein_recovery_tool_is_answered_inside_rein():
    model = ScriptedModel([CANCEL, tool_call("report_internal_error", {"summary": "order service timed out"}),
                           "Let me try that again.", CANCEL, "Order R1002 has been cancelled; 39.0 refunded."])
    record = await trial(ReferenceAgent(model), "rein")
    replies = [m["content"] for m in record.messages if m["role"] == "assistant" and not m.get("inner")]
    # worded from the failed result (a 503 timeout): the service is not responding, not "our side"
    assert replies[0].startswith("I'm sorry, a system I need is not responding right now (order service timed out)")
    # the agent's tool node never ran rein's tool: the environment saw only the domain's
    assert {c.name for c in record.tool_calls} == {"cancel_pending_order"}
    assert diagnosed(record)


async def test_a_wrap_unaware_graph_is_wrapped_whole_and_the_log_says_what_rein_did_per_turn():
    def make(tools):  # no ``wrap``: rein can only sit around each whole run of the graph
        return create_agent(LangChainChatModel(chat_model=retrying_model()), tools=tools)

    record = await trial(GraphAgent(make, name="make_graph"), "rein")
    assert record.status == "passed" and not diagnosed(record)
    assert all(t.agent_calls == 1 and t.diagnosis is not None for t in record.turns)


async def test_what_rein_did_on_each_model_call_adds_up_per_user_turn(tmp_path):
    record = await trial(ReferenceAgent(retrying_model()), "rein")
    first = record.turns[0]
    assert first.agent_calls == 2 and first.diagnosis["errors"][0]["type"] == "tool_failure"
    assert "The tool call failed" in first.diagnosis["plan"]
    assert first.diagnosis["recovery_tools"] == ["report_internal_error"]
    # the aggregate lives in the same run log fields as before: saved and loaded unchanged
    path = tmp_path / "run.json"
    RunLog(config={"suite": "x", "agent": "reference"}, trials=[record]).save(path)
    assert RunLog.load(path).trials[0].turns == record.turns
