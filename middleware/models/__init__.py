"""Chat model implementations and the one function that picks one from a spec string."""
from __future__ import annotations

from middleware.models.openai_compat import OpenAICompatModel, Pool
from middleware.models.testing import FunctionModel, ScriptedModel, tool_call
from policies.chat_model import ChatModel, ModelError, ModelRequest, ModelResponse

_local = None


def resolve_model(spec: str | None, api_key: str | None = None, timeout: float = 60.0,
                  model: str | None = None, idle_timeout: float | None = None) -> ChatModel:
    """``http(s)://.../v1`` → fast path; ``local``/None → embedded model; else litellm."""
    global _local
    if spec and spec.startswith(("http://", "https://")):
        return OpenAICompatModel(spec, api_key=api_key, model=model, timeout=timeout, idle_timeout=idle_timeout)
    if not spec or spec in ("local", "embedded", "smollm2"):
        from middleware.models.local import LocalModel

        if _local is None:  # one in-process copy of the weights, shared by proxy and rein
            _local = LocalModel()
        return _local
    from middleware.models.litellm_model import LiteLLMModel

    return LiteLLMModel(spec, api_key=api_key, timeout=timeout)


__all__ = ["ChatModel", "FunctionModel", "ModelError", "ModelRequest", "ModelResponse",
           "OpenAICompatModel", "Pool", "ScriptedModel", "resolve_model", "tool_call"]
