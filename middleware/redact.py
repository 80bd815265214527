"""What reaches a client names what failed, never where or how inside rein: URLs, IP addresses
and host:port pairs are replaced, and so are Python exception names and the interpreter's own
messages (the log keeps the detail). The one redaction for every client-visible byte rein writes
itself: error bodies in each protocol's shape, SSE error events, x-rein-fail-open, and an
upstream's error body relayed under passthrough (``redact_json``).

    >>> redact("Cannot connect to host 127.0.0.1:9199 ssl:default")
    'Cannot connect to host [address] ssl:default'
    >>> redact("messages.0.content.0.0.0.0.0: JSON nested more than 64 levels deep")
    'messages.0.content.0.0.0.0.0: JSON nested more than 64 levels deep'
    >>> redact("POST http://llm.internal:8000/v1/chat/completions: 503")
    'POST [url]: 503'
    >>> redact("factuality: TypeError: sequence item 0: expected str instance, int found; persona: over budget (2s)")
    'factuality: failed; persona: over budget (2s)'
    >>> redact("stream_check: internal error (TypeError); the reply streams unchecked")
    'stream_check: internal error; the reply streams unchecked'
    >>> redact("input.3: unhashable type: 'list'")
    'input.3: failed'
    >>> redact("upstream: litellm.BadRequestError: OpenAIException - max_tokens is too large")
    'upstream: max_tokens is too large'
"""
from __future__ import annotations

import re
from typing import Any

import orjson

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>:,.;)]", re.I)
# An IPv4 address stands alone: not inside a longer dotted run such as a JSON path "messages.0.content.0.0.0.0"
_IP = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\d|\.\d)(?::\d{1,5})?\b|\[[0-9a-f:]{3,}\](?::\d{1,5})?", re.I)
# host:port, the host starting with a letter (a Kubernetes service "vllm-0:8000"; not a time "10:30")
_HOST_PORT = re.compile(r"\b[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*:\d{2,5}\b", re.I)
# A Python exception's name ("TypeError", "aiohttp.ClientConnectorError") and whatever message follows
# it up to the next clause; the interpreter's own wording when it comes without the name.
# litellm wraps a provider's own reason in two exception names: the reason is kept, the names are not.
_LITELLM = re.compile(r"\b(?:litellm\.)?\w+Error: \w+Exception - ")
_EXCEPTION = re.compile(r"\b(?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)\b(?::[^;\n]*)?")
# A name in parentheses after the words that already say it failed: "internal error (TypeError)"
_NAMED = re.compile(r" \((?:[a-z_]\w*\.)*[A-Z]\w*(?:Error|Exception)\)")
_PYTHON_WORDS = re.compile(r"(?:unhashable type|got multiple values for (?:keyword )?argument|object has no attribute|"
                           r"object is not (?:subscriptable|iterable|callable)|unexpected keyword argument|"
                           r"expected str instance|takes \d+ positional argument|argument of type|"
                           r"object of type '\w+' has no len)[^;\n]*")


def redact(text: str) -> str:
    if "://" in text:
        text = _URL.sub("[url]", text)
    text = _HOST_PORT.sub("[address]", _IP.sub("[address]", text))
    if "Error" in text or "Exception" in text:
        text = _EXCEPTION.sub("failed", _NAMED.sub("", _LITELLM.sub("", text)))
    return _PYTHON_WORDS.sub("failed", text)


def redact_json(raw: bytes) -> bytes:
    """An upstream's error body with every string in it redacted; a body that is not JSON, as text."""
    try:
        return orjson.dumps(_strings(orjson.loads(raw)))
    except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
        return redact(raw.decode("utf-8", "replace")).encode()


def _strings(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_strings(v) for v in value]
    return value


_USERINFO = re.compile(r"(?<=://)([^/@:\s]*):[^/@\s]*@")


def masked(url: str) -> str:
    """A URL for the operator's own console: the password in it hidden, the rest kept.

    >>> masked("http://user:s3cret@llm.internal:8000/v1")
    'http://user:***@llm.internal:8000/v1'
    >>> masked("anthropic/claude-sonnet-4")
    'anthropic/claude-sonnet-4'
    """
    return _USERINFO.sub(r"\1:***@", url)
