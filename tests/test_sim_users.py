"""User simulators: the scripted one (turns and rules) and the LLM one (persona, stop tokens)."""
from __future__ import annotations

from middleware.models import FunctionModel
from sim_tests.suites import load_suite
from sim_tests.users import Exchange, LLMUser, ScriptedUser, parse_stop, user_prompt


def scenario(i: str = "retail-cancel-kettle--vague_reference"):
    return next(s for s in load_suite("retail").scenarios if s.id == i)


async def test_scripted_user_follows_rules_then_stops_past_the_end():
    user = ScriptedUser(scenario("retail-cancel-kettle"))
    first = await user.reply([])
    assert first.text.startswith("Hi, I'm u_ava") and first.stop is None
    seen = [Exchange(role="user", text=first.text), Exchange(role="assistant", text="Order R1002 has been cancelled.")]
    second = await user.reply(seen)
    assert second.stop == "stop" and second.text == "###STOP###"
    assert (await user.reply(seen)).stop == "stop"  # past the script: stop
    other = ScriptedUser(scenario("retail-cancel-kettle"))
    await other.reply([])
    assert (await other.reply([Exchange(role="assistant", text="Shall I cancel it?")])).text == "Yes, please go ahead."


def test_stop_tokens_are_found_inside_text():
    assert parse_stop("Thanks, bye ###STOP###").stop == "stop"
    assert parse_stop("###TRANSFER###").stop == "transfer"
    assert parse_stop("this is not what I asked ###OUT-OF-SCOPE###").stop == "out_of_scope"
    assert parse_stop("Please cancel it").stop is None


async def test_llm_user_gets_persona_goal_and_failure_instruction_with_roles_flipped():
    asked = []

    def fake(request):
        asked.append(request)
        return "Which one? The kettle. ###TRANSFER###" if len(asked) > 1 else "Please cancel my order."

    user = LLMUser(scenario(), FunctionModel(fake))
    first = await user.reply([])
    assert first.text == "Please cancel my order." and first.stop is None and first.model_calls == 1
    system = asked[0].messages[0].content
    assert "Cancel order R1002" in system and "###STOP###" in system and "'my order'" in system
    seen = [Exchange(role="user", text=first.text), Exchange(role="assistant", text="Which order?")]
    second = await user.reply(seen)
    assert second.stop == "transfer"
    roles = [m.role for m in asked[1].messages]
    assert roles == ["system", "assistant", "user"]  # the agent speaks as "user" to the simulator
    assert asked[1].messages[2].content == "Which order?"


async def test_llm_user_empty_reply_ends_the_dialogue():
    user = LLMUser(scenario(), FunctionModel(lambda r: ""))
    assert (await user.reply([])).stop == "stop"


def test_user_prompt_lists_what_the_user_knows_and_does_not():
    text = user_prompt(scenario("retail-cancel-kettle"))
    assert "order_id = R1002" in text and "the refund amount" in text
