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
from policies.model import Capabilities, capabilities_of, provider_of


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
