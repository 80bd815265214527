"""A model says what it is and what it can do (data on the model), and the proxy reads that: no
branching on class names. A model of your own gets the defaults, or says otherwise."""
from __future__ import annotations

from fake_upstream import asgi_client

from middleware.config import Settings
from middleware.engine import Engine
from middleware.models import FunctionModel, ScriptedModel
from middleware.models.litellm_model import LiteLLMModel
from middleware.models.openai_compat import OpenAICompatModel
from middleware.proxy import create_app
from policies.chat_model import Capabilities, capabilities_of, provider_of


def test_each_model_carries_its_provider_and_capabilities():
    fast = OpenAICompatModel("http://127.0.0.1:1/v1", model="m")
    assert (provider_of(fast), capabilities_of(fast)) == ("openai", Capabilities(relay=True, list_models=True))
    assert provider_of(LiteLLMModel("anthropic/claude-x")) == "anthropic" and provider_of(LiteLLMModel("gpt-4o")) == "litellm"
    assert provider_of(ScriptedModel([])) == "rein.test" and capabilities_of(ScriptedModel([])) == Capabilities()
    assert provider_of(object()) == "unknown"


async def test_v1_models_asks_only_a_model_that_says_it_lists_models():
    class Lister(FunctionModel):
        capabilities = Capabilities(list_models=True)

        async def list_models(self):
            return [{"id": "mine-1", "object": "model", "owned_by": "me"}]

    for model, ids in ((Lister(lambda r: "hi", name="x"), ["mine-1"]), (FunctionModel(lambda r: "hi", name="x"), ["x"])):
        app = create_app(Settings(policy="passthrough"), Engine(model, "passthrough"))
        async with asgi_client(app) as client:
            r = await client.get("/v1/models")
        assert [m["id"] for m in r.json()["data"]] == ids


# ---- one wrapper owns every `chat` span ------------------------------------------------------------
async def test_every_model_call_of_the_stages_is_one_chat_span_with_provider_and_usage():
    import json

    from middleware.models.instrumented import Instrumented
    from policies.messages import UserMessage
    from policies.chat_model import ModelRequest, ModelResponse
    from policies.messages import assistant
    from tests.spans import recording

    exporter = recording()
    verdict = json.dumps({"error": "none"})
    rein_model = FunctionModel(lambda r: ModelResponse(message=assistant(verdict), usage={
        "prompt_tokens": 7, "completion_tokens": 2}), name="judge")
    engine = Engine(ScriptedModel(["Fine."], name="agent-m"), "default", rein_model=rein_model)
    pipeline = engine.pipeline()
    assert isinstance(pipeline.agent, Instrumented) and isinstance(pipeline.inception.llm.model, Instrumented)
    assert isinstance(pipeline.refinery.model, Instrumented) and engine.agent is not pipeline.agent  # data kept raw
    exporter.clear()
    # "actually" wakes the LLM module under on_signal: one rein call, one agent call.
    await pipeline.run(ModelRequest(messages=[UserMessage(content="actually, I changed my mind about the order")]))
    chats = {s.name: s for s in exporter.get_finished_spans() if s.name.startswith("chat ")}
    assert set(chats) >= {"chat agent-m", "chat judge"}
    assert all(s.attributes["gen_ai.provider.name"] == "rein.test" for s in chats.values())
    assert chats["chat judge"].attributes["gen_ai.usage.input_tokens"] == 7
    assert Instrumented.wrap(pipeline.agent) is pipeline.agent  # wrapped once
