"""What a model setting may say, checked before anything starts.

``http(s)://host[:port]/v1`` (the fast path), ``local``/``embedded``/``smollm2`` (the embedded
model), a litellm model string (``anthropic/claude-...``, ``gpt-4o``) and, for the middleware
model only, ``upstream``. Anything else is refused with a reason, e.g.::

    check_model_spec("htp://agent:8000/v1")   # ValueError: 'htp://agent:8000/v1' is not a URL rein can call ...
"""
from __future__ import annotations

import contextlib
import io
import os
from urllib.parse import urlsplit

EMBEDDED = ("local", "embedded", "smollm2")
UPSTREAM = "upstream"


def check_model_spec(spec: str | None, allow_upstream: bool = False) -> str | None:
    if spec is None or spec in EMBEDDED or (allow_upstream and spec == UPSTREAM):
        return spec
    spec = spec.strip()
    lowered = spec.lower()
    if "://" in spec or lowered.startswith(("http:", "https:", "http/", "https/")):
        parts = urlsplit(spec)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{spec!r} is not a URL rein can call: write http://host:port/v1 or https://host/v1")
        try:
            parts.port  # a port that is not a number or out of range raises here
        except ValueError as e:
            raise ValueError(f"{spec!r}: {e}") from None
        return spec
    _check_litellm(spec)
    return spec


def _check_litellm(spec: str) -> None:
    """litellm must know the provider, or every request would fail (as a 400 blaming the client)."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch at import
    from litellm import get_llm_provider

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # litellm prints a provider list on failure
            get_llm_provider(spec)
    except Exception:
        raise ValueError(f"{spec!r} names no model provider: write http(s)://host/v1 for an OpenAI-compatible "
                         f"endpoint, or provider/model for litellm (e.g. anthropic/claude-sonnet-4-5)") from None
