"""The one protocol for "a chat model": async, messages + tools + settings in, a message out.

Implementations live in ``middleware.models``; inception and refiners depend only on this.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, AsyncIterator, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from policies.messages import AssistantMessage, Message


class ModelRequest(BaseModel):
    """What a model is asked. ``extra`` carries every other OpenAI field (temperature,
    seed, user, unknown vendor fields ...) so the proxy passes them through untouched."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    messages: list[Message]
    model: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    timeout: float | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    # The client's request as it came, for a model that speaks its wire format (the proxy sets it).
    # Copies carry it along; the model sends it only while the request still holds the very values
    # it was read into (middleware/models/openai_compat.py, WireBody.unchanged).
    wire: Any = Field(default=None, exclude=True, repr=False)


class ModelResponse(BaseModel):
    message: AssistantMessage
    model: str = ""
    finish_reason: str | None = "stop"
    usage: dict[str, Any] | None = None
    # The upstream completion as received, when there was one (lets the proxy return
    # fields rein does not model, e.g. system_fingerprint, unchanged).
    raw: dict[str, Any] | None = None


# Upstream statuses a client sees as they are (its own request was at fault, or it must wait); any
# other failure is a 502. One map for every model implementation, so a provider's 409 or 413 means
# the same through the fast path and through litellm.
PASSED_THROUGH_STATUS = frozenset({400, 401, 403, 404, 409, 413, 422, 429})


class ModelError(Exception):
    """A model call failed. ``status`` follows the proxy's mapping: 502 upstream failure,
    504 timeout, 4xx passed through from the upstream."""

    def __init__(self, message: str, status: int = 502, code: str = "upstream_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.headers = headers or {}


@dataclass(frozen=True)
class Capabilities:
    """What a model can do beyond ``complete``/``stream``: data the proxy reads, not a class it tests for."""
    relay: bool = False        # passes request bytes through unchanged (relay, relay_stream): the passthrough path
    list_models: bool = False  # answers ``GET /v1/models`` itself (list_models)


NO_CAPABILITIES = Capabilities()


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. ``stream`` yields OpenAI ``chat.completion.chunk`` dicts.

    Optional data a model may carry: ``provider`` (the ``gen_ai.provider.name`` of its spans,
    e.g. "openai", "anthropic", "llama_cpp") and ``capabilities`` (a ``Capabilities``); read them
    with ``provider_of`` / ``capabilities_of``, which give the defaults for a model without them.

    Example::

        reply = await model.complete(ModelRequest(messages=[UserMessage(content="hi")]))
        print(reply.message.content)
    """

    name: str

    async def complete(self, request: ModelRequest) -> ModelResponse: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[dict[str, Any]]: ...


def provider_of(model: Any) -> str:
    """The model's ``provider``; "unknown" for one that does not say."""
    return str(getattr(model, "provider", None) or "unknown")


def capabilities_of(model: Any) -> Capabilities:
    caps = getattr(model, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else NO_CAPABILITIES
