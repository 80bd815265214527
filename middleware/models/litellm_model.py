"""Any provider litellm knows (``anthropic/...``, ``bedrock/...``, ``gemini/...``).

litellm is imported on first use: its import costs seconds and the proxy may never need it.
"""
from __future__ import annotations

import logging
import os
from typing import Any, AsyncIterator

from middleware.redact import redact
from policies.messages import AssistantMessage, dump_messages
from policies.chat_model import PASSED_THROUGH_STATUS, ModelError, ModelRequest, ModelResponse

_litellm = None


def _lib():
    global _litellm
    if _litellm is None:
        # Without this, importing litellm fetches a price map from the internet.
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True
        litellm.drop_params = True
        _litellm = litellm
    return _litellm


def _error(e: Exception) -> ModelError:
    lib = _lib()
    if isinstance(e, lib.Timeout):
        return ModelError("upstream timed out", 504, "upstream_timeout")
    status = getattr(e, "status_code", None) or 502
    # litellm's messages may carry the provider's URL: the log keeps it, the client does not.
    logging.getLogger("rein.upstream").warning("upstream failed: %s: %s", type(e).__name__, e)
    if status in PASSED_THROUGH_STATUS:
        return ModelError(f"upstream: {redact(str(e))[:300]}", status, f"upstream_{status}")
    return ModelError(f"upstream failed: {redact(str(e))[:300]}", 502, "upstream_error")


# OpenAI Chat Completions request parameters (not connection settings) a client may set.
_REQUEST_PARAMS = frozenset({
    "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens", "presence_penalty",
    "frequency_penalty", "logit_bias", "user", "seed", "logprobs", "top_logprobs", "parallel_tool_calls",
    "stream_options", "reasoning_effort", "modalities", "prediction", "audio", "metadata", "store",
    "service_tier", "verbosity", "web_search_options", "functions", "function_call", "thinking",
    "prompt_cache_key", "safety_identifier"})


class LiteLLMModel:
    def __init__(self, model: str, api_key: str | None = None, api_base: str | None = None,
                 timeout: float = 60.0, retries: int = 0):
        self.model = model
        self.name = model
        self.provider = model.split("/", 1)[0] if "/" in model else "litellm"  # "anthropic/claude-..." -> anthropic
        self.api_key = api_key
        self.api_base = api_base
        self.timeout = timeout
        # No retries by default: the proxy's caller retries on its own, and stacked retries
        # turn one upstream failure into a long wait before the 502.
        self.retries = retries

    def _kwargs(self, request: ModelRequest) -> dict[str, Any]:
        # A client's fields are request parameters, never litellm settings: `api_base`,
        # `base_url`, `extra_headers`, `custom_llm_provider`... would let a caller redirect rein
        # or swap its credentials. OpenAI's own parameters go as such; the rest rides in the body.
        kw: dict[str, Any] = {}
        extra_body: dict[str, Any] = {}
        for k, v in request.extra.items():
            if k in _REQUEST_PARAMS:
                kw[k] = v
            elif k not in ("stream", "model"):
                extra_body[k] = v
        if extra_body:
            kw["extra_body"] = extra_body
        kw.update(model=self.model, messages=dump_messages(request.messages),
                  timeout=request.timeout or self.timeout, max_retries=self.retries)
        for key in ("tools", "tool_choice", "response_format"):
            if getattr(request, key) is not None:
                kw[key] = getattr(request, key)
        if self.api_key:
            kw["api_key"] = self.api_key
        if self.api_base:
            kw["api_base"] = self.api_base
        return kw

    async def complete(self, request: ModelRequest) -> ModelResponse:
        lib = _lib()
        try:
            resp = await lib.acompletion(**self._kwargs(request))
        except Exception as e:
            raise _error(e) from None
        data = resp.model_dump()
        choice = data["choices"][0]
        msg = {k: v for k, v in choice["message"].items() if v is not None or k == "content"}
        msg = {k: v for k, v in msg.items() if k in ("content", "tool_calls", "refusal")}
        return ModelResponse(message=AssistantMessage.model_validate({"role": "assistant", **msg}),
                             model=data.get("model", self.model), finish_reason=choice.get("finish_reason"),
                             usage=data.get("usage"))

    async def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]:
        lib = _lib()
        try:
            stream = await lib.acompletion(stream=True, **self._kwargs(request))
            async for part in stream:
                yield part.model_dump(exclude_none=True)
        except ModelError:
            raise
        except Exception as e:
            raise _error(e) from None
