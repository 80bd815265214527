"""A plug-in refiner streams sentence by sentence as factuality does (issue 21): what it declares
decides, not its name. One that implements ``SentenceRefiner`` (a review of its own) or declares
``sentence_local`` is released sentence by sentence, each sentence leaving rein only once checked;
one that declares neither holds the reply whole. Registered as plug-ins are: a policy's
``plugins:`` list, or the objects themselves (``Rein(..., refiners=)`` reaches the same builder)."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from test_refine_stream import LiveServer

import refiners
from middleware.config import Settings
from middleware.engine import Engine
from middleware.models.testing import as_response
from middleware.proxy import create_app
from policies.loader import load_policy
from policies.messages import UserMessage
from refiners.base import TurnContext
from tests.plugin_examples import NoPromises, Sentencewise, WholeReply

ASK = [{"role": "user", "content": "When will my parcel arrive?"}]
PIECES = ["Delivery is guaranteed ", "by Friday. ", "Tracking follows ", "soon."]
CHECKED = "Delivery is expected by Friday. Tracking follows soon."


class GatedModel:
    """Streams ``PIECES``; the last one only once ``gate`` opens (the client holds the first sentence)."""

    name = "gated"

    def __init__(self):
        self.gate = asyncio.Event()

    async def complete(self, request):
        return as_response("".join(PIECES), self.name)

    async def stream(self, request):
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": self.name}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        for i, piece in enumerate(PIECES):
            if i == len(PIECES) - 1:
                await asyncio.wait_for(self.gate.wait(), 5)  # times out when rein holds the reply whole
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await asyncio.sleep(0.005)
        yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


async def _stream(engine: Engine, policy: str, model: GatedModel) -> tuple[str, httpx.Headers, str]:
    """(the text the client read, the response headers, rein's trailer line)."""
    got, trailer = "", ""
    async with LiveServer(create_app(Settings(policy=policy), engine)) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            async with client.stream("POST", "/v1/chat/completions",
                                     json={"model": "m", "messages": ASK, "stream": True}) as r:
                async for line in r.aiter_lines():
                    if line.startswith(": rein {"):
                        trailer = line
                    if not line.startswith("data: {"):
                        continue
                    choices = json.loads(line[6:])["choices"]
                    got += (choices[0]["delta"].get("content") or "") if choices else ""
                    if "Friday." in got:
                        model.gate.set()  # the first sentence reached the client before the last piece left
    return got, r.headers, trailer


@pytest.mark.parametrize("plugin", ["NoPromises", "Sentencewise"])
async def test_a_plugin_named_in_a_policy_checks_each_sentence_as_it_streams(tmp_path, plugin):
    path = tmp_path / "mine.yaml"
    path.write_text(f'name: mine\nextends: structural\nplugins: ["tests.plugin_examples:{plugin}"]\n')
    model = GatedModel()
    got, headers, trailer = await _stream(Engine(model, str(path)), str(path), model)
    assert got == CHECKED                                    # 'guaranteed' never reached the client
    assert headers["x-rein-held"] == "sentences"
    name = {"NoPromises": "no_promises", "Sentencewise": "sentencewise"}[plugin]
    assert f'"x-rein-refined":"{name}"' in trailer and '"x-rein-changed-sentences":"1"' in trailer


async def test_a_plugin_given_as_an_object_streams_beside_factuality():
    model = GatedModel()
    engine = Engine(model, "structural", refiners=[NoPromises()])
    assert list(engine.pipeline().refinery.refiners) == ["factuality", "no_promises"]
    got, headers, trailer = await _stream(engine, "structural", model)
    assert got == CHECKED and headers["x-rein-held"] == "sentences"


def _check_for(plugin):
    refinery = refiners.build(load_policy("structural"), refiners=[plugin])
    return refinery.sentence_check(TurnContext(messages=[UserMessage(content="When will it arrive?")]))


async def test_what_a_plugin_declares_decides_how_a_stream_is_held():
    assert _check_for(WholeReply()) is None                  # declares nothing: the reply is held whole
    check = _check_for(NoPromises())
    check.extend("It is guaranteed. Thanks!")
    assert await check.sentence(0, 17) == "It is expected."
    assert await check.sentence(17, 25) == " Thanks!"
    result = check.refinement()
    assert result.final == "It is expected. Thanks!" and result.header() == "no_promises"


async def test_a_plugin_that_may_ask_the_model_holds_the_stream_whole():
    class Consulting(NoPromises):
        def consults(self, turn):
            return True

    assert _check_for(Consulting()) is None
