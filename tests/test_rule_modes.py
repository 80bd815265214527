"""Per-rule modes and shadow mode, as a client and an operator see them: rule ids, a pack's
``rules:`` (by id or glob, checked when it loads), what act / flag / shadow / off let each stage
change, the ``x-rein-rules`` and ``x-rein-would-*`` headers, and streams under shadow."""
from __future__ import annotations

import json

import httpx
import pytest

from inception.base import Detection, Diagnosis
from inception.cascade import Cascade
from middleware.config import Settings
from middleware.decisions import DecisionLog, Filters, open_decision_store
from middleware.engine import Engine
from middleware.models import ScriptedModel
from middleware.models.testing import tool_call
from middleware.proxy import create_app
from policies.loader import PolicyError, load_policy, parse_policy
from policies.messages import dump_messages, parse_messages
from policies.rules import RuleModes, known_rules
from policies.schema import Policy

URL = "/v1/chat/completions"
TOOLS = [{"type": "function", "function": {"name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}}}}},
    {"type": "function", "function": {"name": "cancel_order", "parameters": {"type": "object"}}}]
FAILED = [{"role": "user", "content": "Where is order A1234?"},
          {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
              "name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"}}]},
          {"role": "tool", "tool_call_id": "c1", "content": "Error: order lookup service unavailable (503)"}]
FETCHED = [{"role": "user", "content": "What did order A1234 cost?"},
           {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {
               "name": "get_order", "arguments": "{\"order_id\": \"A1234\"}"}}]},
           {"role": "tool", "tool_call_id": "c1", "content": json.dumps(
               {"order_id": "A1234", "status": "shipped", "total": 42.5})}]
WRONG = "Order A1234 has shipped; it came to $24.50."


def pack(tmp_path, extra: str, name="mine") -> Policy:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nextends: structural\n{extra}")
    return load_policy(str(path))


def client(policy, replies, shadow=False, log=None):
    agent = ScriptedModel(replies, cycle=True)
    engine = Engine(agent, policy, shadow=shadow, decisions=log)
    app = create_app(Settings(policy="structural", admin_key="op"), engine)
    return agent, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://rein.test")


def body(messages, **extra):
    return {"model": "m", "messages": messages, "tools": TOOLS, **extra}


# ---- rule ids and modes in a pack ---------------------------------------------------------
def test_a_pack_sets_modes_by_id_or_glob_and_the_most_specific_wins():
    modes = RuleModes({"detect:*": "flag", "detect:ambiguous_request/*": "shadow",
                       "detect:ambiguous_request/polysemy": "off"})
    assert modes.mode("detect:tool_failure") == "flag"
    assert modes.mode("detect:ambiguous_request/vague_reference") == "shadow"
    assert modes.mode("detect:ambiguous_request/polysemy") == "off"
    assert modes.mode("refine:factuality/amount") == "act"
    assert RuleModes({"detect:*": "flag"}, shadow=True).mode("refine:factuality/date") == "shadow"
    assert RuleModes({"detect:*": "flag"}, shadow=True).mode("detect:tool_failure") == "flag"


def test_unknown_rule_ids_and_empty_globs_are_load_errors_with_their_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("name: bad\nextends: structural\nrules:\n  detect:tool_failure: flag\n"
                                       "  detect:tool_falure: off\n  refine:spelling/*: shadow\n")
    with pytest.raises(PolicyError) as e:
        load_policy(str(tmp_path / "bad.yaml"))
    text = str(e.value)
    assert "rules.detect:tool_falure (line 5): unknown rule 'detect:tool_falure'" in text
    assert "rules.refine:spelling/* (line 6): the pattern 'refine:spelling/*' matches no rule" in text
    with pytest.raises(PolicyError, match=r"rules.detect:tool_failure \(line 3\).*'off', 'act', 'flag' or 'shadow'"):
        parse_policy("name: x\nrules:\n  detect:tool_failure: sometimes\n", "x.yaml")


def test_a_bare_yaml_off_means_the_mode_and_the_schema_tells_editors(tmp_path):
    policy = pack(tmp_path, "rules:\n  detect:action_loop: off\n")
    assert policy.rules == {"detect:action_loop": "off"}
    schema = Policy.model_json_schema()
    rules = schema["properties"]["rules"]
    (pattern, mode), = rules["patternProperties"].items()
    assert pattern.startswith("^(?:detect|refine|action):") and rules["additionalProperties"] is False
    assert mode["enum"] == ["off", "act", "flag", "shadow"]
    assert schema["properties"]["shadow"]["type"] == "boolean"


def test_known_rules_come_from_the_taxonomy_the_refiners_and_the_action_checks():
    known = known_rules(load_policy("default"))
    assert {"detect:tool_failure", "detect:ambiguous_request/vague_reference", "detect:ambiguous_request",
            "refine:factuality/amount", "refine:factuality/date", "refine:coherence/revise",
            "action:builtin/unconfirmed_write"} <= known


# ---- what each mode lets diagnosis change ---------------------------------------------------
async def test_a_detection_acts_flags_shadows_or_is_off(tmp_path):
    seen = {}
    for mode in ("act", "flag", "shadow", "off"):
        policy = pack(tmp_path, f"rules:\n  detect:tool_failure: {mode}\n", name=f"p{mode}")
        agent, c = client(policy, ["Sorry, the order service is down."])
        async with c:
            r = await c.post(URL, json=body(FAILED))
        assert r.status_code == 200
        planted = len(agent.requests[0].messages) > len(FAILED)  # the think trace the plan rides in
        seen[mode] = (planted, r.headers.get("x-rein-diagnosis"), r.headers.get("x-rein-rules"),
                      r.headers.get("x-rein-would-plan"))
    assert seen["act"] == (True, "tool_failure", "detect:tool_failure=act", None)
    assert seen["flag"] == (False, "tool_failure", "detect:tool_failure=flag", None)
    assert seen["shadow"] == (False, "none", "detect:tool_failure=shadow", "detect:tool_failure")
    assert seen["off"] == (False, "none", None, None)


async def test_shadow_mode_plants_nothing_and_says_what_it_would_have_done():
    agent, c = client(load_policy("structural"), ["Sorry, the order service is down."], shadow=True)
    async with c:
        r = await c.post(URL, json=body(FAILED))
    assert dump_messages(agent.requests[0].messages) == dump_messages(parse_messages(FAILED))  # as the client sent it
    assert agent.requests[0].tools == TOOLS
    assert r.headers["x-rein-would-plan"] == "detect:tool_failure"
    assert r.json()["choices"][0]["message"]["content"] == "Sorry, the order service is down."


# ---- what each mode lets a refiner change ---------------------------------------------------
async def test_a_refiner_rule_in_flag_or_shadow_leaves_the_reply_as_written(tmp_path):
    results = {}
    for mode in ("act", "flag", "shadow"):
        policy = pack(tmp_path, f"rules:\n  refine:factuality/amount: {mode}\n", name=f"r{mode}")
        _, c = client(policy, [WRONG])
        async with c:
            r = await c.post(URL, json=body(FETCHED))
        results[mode] = (r.json()["choices"][0]["message"]["content"], r.headers.get("x-rein-refined"),
                         r.headers.get("x-rein-rules"), r.headers.get("x-rein-would-refine"))
    assert results["act"] == (WRONG.replace("24.50", "42.50"), "factuality", "refine:factuality/amount=act", None)
    assert results["flag"] == (WRONG, "none", "refine:factuality/amount=flag", None)
    assert results["shadow"] == (WRONG, "none", "refine:factuality/amount=shadow", "refine:factuality/amount")


async def test_a_shadowed_stream_is_never_held_and_its_trailer_says_what_would_have_changed():
    _, c = client(load_policy("structural"), [WRONG], shadow=True)
    async with c:
        r = await c.post(URL, json=body(FETCHED, stream=True))
    assert r.headers["x-rein-held"] == "none"
    text = "".join(json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                   for line in r.text.splitlines() if line.startswith("data: {"))
    assert text == WRONG
    trailer = json.loads(next(line for line in r.text.splitlines() if line.startswith(": rein {"))[len(": rein "):])
    assert trailer["x-rein-would-refine"] == "refine:factuality/amount"


# ---- what each mode lets an action check hold -----------------------------------------------
class HoldCancel(Cascade):
    """An action rule for this test: every cancel_order call is held."""

    def check_draft(self, messages, tools, draft, now=None) -> Diagnosis:
        found = [Detection(type="action_violation", evidence="the order has shipped", rule="action:builtin/unconfirmed_write",
                           hold=True, call_id=c.id) for c in draft.tool_calls or [] if c.function.name == "cancel_order"]
        return Diagnosis(errors=found, plan="Do not cancel a shipped order." if found else None)

    def checks_calls(self, tools) -> bool:
        return True


@pytest.mark.parametrize("stream", [False, True])
async def test_shadow_mode_holds_no_call_and_says_it_would_have(stream, tmp_path):
    log = DecisionLog(open_decision_store(str(tmp_path / "d.db")), content=True)
    call = tool_call("cancel_order", {"order_id": "A1234"}, id="call_1")
    agent, c = client(load_policy("structural"), [call], shadow=True, log=log)
    c._transport.app.state.engine.pipeline().inception = HoldCancel(load_policy("structural"))
    async with c:
        r = await c.post(URL, json=body(FETCHED[:1], stream=stream))
    assert len(agent.requests) == 1  # not re-asked
    if stream:
        assert "cancel_order" in r.text and "x-rein-would-hold" in r.text
    else:
        assert r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "cancel_order"
        assert r.headers["x-rein-would-hold"] == "action:builtin/unconfirmed_write"
    log.close()
    (row,) = log.store.page(Filters())
    assert (row["rule"], row["mode"], row["stage"]) == ("action:builtin/unconfirmed_write", "shadow", "action")
    assert log.store.dialogue(row["request_id"])["reply"]["drafted"]["tool_calls"][0]["id"] == "call_1"


def test_the_sdk_runs_in_shadow_mode_under_rein_shadow(monkeypatch):
    from middleware import Rein

    monkeypatch.setenv("REIN_SHADOW", "1")
    rein = Rein(policy="structural")

    @rein.guard
    def agent(messages, tools=None):
        return WRONG

    reply = agent(FETCHED, TOOLS)
    assert reply == WRONG and not reply.rein.refined  # what the agent wrote: rein only watched


def _nothing_to_do(request) -> str:
    """rein's model answering "nothing to do" to each of its prompts (by the schema it asks for)."""
    props = ((request.response_format or {}).get("json_schema") or request.response_format or {}).get("schema", {})
    props = props.get("properties") or {}
    if "refiners" in props:
        return json.dumps({"refiners": [], "reason": "none needed"})
    if "ok" in props:
        return json.dumps({"ok": True, "feedback": "", "revision": ""})
    return json.dumps({"error": "none", "evidence": "", "confidence": 0, "plan": ""})


@pytest.mark.parametrize("messages,reply", [(FAILED, "Sorry, it is down."), (FETCHED, WRONG)])
async def test_shadow_mode_does_the_same_work_as_acting(messages, reply):
    """Every stage runs under shadow: rein asks its own model as often as when it acts."""
    from middleware.models.testing import FunctionModel
    from middleware.state import rein_model_calls
    from policies.chat_model import ModelRequest

    calls = {}
    for shadow in (False, True):
        own = FunctionModel(_nothing_to_do)
        engine = Engine(ScriptedModel([reply], cycle=True), "default", rein_model=own, shadow=shadow)
        state = await engine.pipeline().run(ModelRequest(messages=parse_messages(messages), tools=TOOLS, model="m"))
        calls[shadow] = (rein_model_calls(state), len(own.requests), [h.rule for h in state.get("hits") or []])
    assert calls[True] == calls[False] and calls[True][2]


def test_a_packs_own_action_rules_and_the_built_in_checks_have_rule_ids():
    actions = ("actions:\n  tools:\n    cancel_order: {write: true, confirm: true}\n  rules:\n"
               "    - id: not_shipped\n      tool: cancel_order\n      condition: args.order_id != \"\"\n"
               "      reason: it has shipped\n")
    policy = parse_policy(f"name: x\nextends: structural\n{actions}rules:\n  action:not_shipped: flag\n"
                          "  action:builtin/*: shadow\n", "x.yaml")
    assert RuleModes.of(policy).mode("action:not_shipped") == "flag"
    assert RuleModes.of(policy).mode("action:builtin/unconfirmed_write") == "shadow"
    with pytest.raises(PolicyError, match=r"rules.action:not_shiped \(line 12\): unknown rule"):
        parse_policy(f"name: x\nextends: structural\n{actions}rules:\n  action:not_shiped: flag\n", "x.yaml")
