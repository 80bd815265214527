"""The pieces of the action hold: what a check's findings make the pipeline do (judge), how a
held stream is relayed and released, and the spans that name the rule."""
from __future__ import annotations

import asyncio

from spans import recording

from inception.base import Detection, Diagnosis
from middleware.action_hold import judge, without_dropped
from middleware.agent_stream import PASS, SENTENCES, WHOLE, Notice, relay_agent_stream, released_calls
from middleware.models import ScriptedModel
from middleware.models.chunks import response_chunks
from middleware.models.testing import as_response, tool_call
from policies.chat_model import ModelRequest
from policies.messages import assistant

_spans = recording()
RULE = "action:no_cancel"


def draft(*names: str, text: str | None = None):
    calls = [tool_call(n, {"id": "A1"}, id=f"c{i}").tool_calls[0] for i, n in enumerate(names)]
    return as_response(assistant(text, calls), "m")


def held(call_id: str | None = "c0", hold: bool = True, rule: str = RULE) -> Detection:
    return Detection(type="action_violation", evidence="not eligible", rule=rule, hold=hold, call_id=call_id)


MALFORMED = Detection(type="tool_misuse", subtype="bad_arguments", evidence="id must be a string")


def test_a_held_call_is_reasked_with_a_plan_until_the_rounds_are_spent_then_dropped():
    d = draft("cancel")
    first = judge(Diagnosis(errors=[held()]), d, {}, 2)
    assert first["draft_check"].plan.startswith("The call cancel was not made: it breaks action:no_cancel")
    second = judge(Diagnosis(errors=[held()], plan="Say it cannot be cancelled."), d, {"hold_rounds": 1}, 2)
    assert second["draft_check"].plan.startswith("Say it cannot be cancelled. (Held again: re-ask 2 of 2")
    last = judge(Diagnosis(errors=[held()]), d, {"hold_rounds": 2, "held_calls": [held(), held()]}, 2)
    assert "draft_check" not in last and [x.call_id for x in last["dropped_calls"]] == ["c0"]
    assert len(last["held_calls"]) == 3 and "dropped" in last["notes"][-1]


def test_malformed_calls_keep_their_one_reask_and_ride_along_with_a_hold():
    d = draft("cancel", "lookup")
    once = judge(Diagnosis(errors=[MALFORMED]), d, {}, 2)
    assert once["draft_check"].errors == [MALFORMED]
    again = judge(Diagnosis(errors=[MALFORMED]), d, {"rechecked": True}, 2)
    assert "draft_check" not in again and again["notes"] == ["draft_check: still tool_misuse/bad_arguments after a re-ask"]
    both = judge(Diagnosis(errors=[held(), MALFORMED]), d, {"rechecked": True}, 2)
    assert both["draft_check"].errors == [held(), MALFORMED]


def test_a_flagged_call_is_only_reported():
    out = judge(Diagnosis(errors=[held(hold=False)]), draft("cancel"), {}, 2)
    assert out == {"flagged_calls": [held(hold=False)]}


def test_a_finding_that_names_no_call_of_the_draft_holds_every_call():
    out = judge(Diagnosis(errors=[held(call_id=None)]), draft("cancel", "lookup"), {"hold_rounds": 2}, 2)
    assert [x.call_id for x in out["dropped_calls"]] == ["c0", "c1"]
    final, notice = without_dropped(draft("cancel", "lookup", text="On it."), out["dropped_calls"])
    assert final.message.tool_calls is None and final.finish_reason == "stop"
    assert final.message.content == "On it.\n\nI did not carry out cancel: not eligible. I did not carry out lookup: not eligible."
    assert notice == final.message.content[len("On it."):]


async def test_the_policy_says_how_many_times_a_held_call_is_reasked():
    from action_doubles import HoldCalls

    from middleware.engine import Engine
    from policies.loader import load_policy
    from policies.messages import UserMessage

    tools = [{"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}}]
    structural = load_policy("structural")
    assert structural.actions.max_rounds == 2
    for rounds, asked in ((0, 1), (1, 2), (3, 4)):
        policy = structural.model_copy(update={"actions": structural.actions.model_copy(update={"max_rounds": rounds})})
        agent = ScriptedModel([draft("cancel").message], cycle=True)
        pipeline = Engine(agent, policy).pipeline()
        pipeline.inception = HoldCalls(policy, tool="cancel")
        state = await pipeline.run(ModelRequest(messages=[UserMessage(content="cancel A1")], tools=tools))
        assert len(agent.requests) == asked and state["final"].message.tool_calls is None


def test_released_calls_keep_the_upstream_chunks_less_the_dropped_call():
    chunks = response_chunks(draft("cancel", "lookup"))[1:]  # after the role chunk, as a held stream has them
    assert released_calls(chunks, set(), "") is chunks
    out = released_calls(chunks, {"c0"}, "No cancel.")
    deltas = [c["choices"][0]["delta"] for c in out]
    assert deltas[0] == {"content": "No cancel."} and [d["tool_calls"][0]["id"] for d in deltas[1:-1]] == ["c1"]
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls" and out[-1]["usage"]
    alone = released_calls(chunks, {"c0", "c1"}, "No.")
    assert [c["choices"][0]["delta"] for c in alone] == [{"content": "No."}, {}]
    assert alone[-1]["choices"][0]["finish_reason"] == "stop"


def stream_of(text: str, call: bool = True):
    resp = draft("cancel", text=text) if call else as_response(assistant(text), "m")
    return response_chunks(resp)


async def relay(mode: str, hold_calls: bool, chunks, check=None):
    written = []
    relayed = await relay_agent_stream(ScriptedModel([chunks]), ModelRequest(messages=[]), written.append, set(),
                                       mode=mode, check=check, hold_calls=hold_calls)
    return written, relayed


async def test_text_before_a_held_call_goes_out_and_the_call_waits():
    chunks = stream_of("Let me check.")
    written, relayed = await relay(PASS, True, chunks)
    assert written == chunks[:-2] and relayed.calls == chunks[-2:] and not relayed.streamed
    written, relayed = await relay(PASS, False, chunks)
    assert written == chunks and relayed.calls == [] and relayed.streamed


async def test_text_held_whole_is_released_when_a_held_call_begins():
    chunks = stream_of("Let me check.")
    written, relayed = await relay(WHOLE, True, chunks)
    assert isinstance(written[0], Notice) and written[1:] == chunks[:-2] and relayed.calls == chunks[-2:]
    assert relayed.held == [] and not relayed.streamed


class PassingCheck:
    """A sentence check that changes nothing (the SentenceCheck surface SentenceRelease uses)."""
    max_chars = 100_000  # past this many characters the release stops checking

    def __init__(self):
        self.text = ""

    def start(self):
        pass

    def extend(self, piece: str):
        self.text += piece

    async def sentence(self, start: int, end: int) -> str:
        await asyncio.sleep(0)
        return self.text[start:end]


async def test_sentences_before_a_held_call_are_checked_and_released_first():
    chunks = stream_of("One. Two")
    written, relayed = await relay(SENTENCES, True, chunks, PassingCheck())
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in written) == "One. Two"
    assert not any(c["choices"][0]["delta"].get("tool_calls") for c in written)
    assert relayed.calls == chunks[-2:] and not relayed.streamed


async def test_a_stream_without_a_call_is_relayed_as_before_when_calls_are_held():
    chunks = stream_of("Just words. Nothing else.", call=False)
    written, relayed = await relay(PASS, True, chunks)
    assert written == chunks and relayed.calls == [] and relayed.streamed


def test_the_spans_name_the_rule_held_dropped_or_flagged():
    _spans.clear()
    judge(Diagnosis(errors=[held()]), draft("cancel"), {}, 2)
    judge(Diagnosis(errors=[held()]), draft("cancel"), {"hold_rounds": 2}, 2)
    judge(Diagnosis(errors=[held(hold=False, rule="action:builtin/unconfirmed_write")]), draft("cancel"), {}, 2)
    spans = {s.name: s.attributes for s in _spans.get_finished_spans()}
    assert spans["apply_guardrail held_tool_call"]["rein.rules"] == (RULE,)
    assert spans["apply_guardrail held_tool_call"]["gen_ai.security.decision.type"] == "deny"
    assert spans["apply_guardrail dropped_tool_call"]["rein.tool_call_ids"] == ("c0",)
    assert spans["apply_guardrail flagged_tool_call"]["rein.rules"] == ("action:builtin/unconfirmed_write",)
    assert spans["apply_guardrail flagged_tool_call"]["gen_ai.security.decision.type"] == "warn"



async def test_the_clean_path_and_the_graph_hold_alike():
    from action_doubles import HoldCalls

    from middleware.engine import Engine
    from policies.loader import load_policy
    from policies.messages import UserMessage

    tools = [{"type": "function", "function": {"name": "cancel", "parameters": {"type": "object"}}}]
    seen = []
    for entry in ("run", "run_graph"):
        agent = ScriptedModel([draft("cancel").message, draft("cancel").message, "It cannot be cancelled."])
        pipeline = Engine(agent, "structural").pipeline()
        pipeline.inception = HoldCalls(load_policy("structural"), tool="cancel")
        state = await getattr(pipeline, entry)(ModelRequest(messages=[UserMessage(content="cancel A1")], tools=tools))
        seen.append((state["final"].message.content, [d.rule_id for d in state["held_calls"]], state["hold_rounds"],
                     len(agent.requests)))
    assert seen[0] == seen[1] == ("It cannot be cancelled.", ["action:test/cancel_eligible"] * 2, 2, 3)


def test_released_calls_find_a_call_the_upstream_sent_without_an_id_and_never_leak_an_unknown_one():
    chunks = [{"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "cancel",
                                                                                          "arguments": "{}"}}]}}]},
              {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 1, "id": "c1", "function": {
                  "name": "lookup", "arguments": "{}"}}]}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}]
    names = lambda out: [tc["function"]["name"] for c in out for tc in c["choices"][0]["delta"].get("tool_calls") or []]  # noqa: E731
    assert names(released_calls(chunks, {"call_0"}, "x")) == ["lookup"]  # the draft's id for index 0
    assert names(released_calls(chunks, {"no_such_id"}, "x")) == []      # unknown: nothing goes out
