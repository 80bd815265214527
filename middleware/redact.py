"""What reaches a client names what failed, never where: URLs, IP addresses and host:port
pairs are replaced (the log keeps the detail). Applied where upstream or middleware-model
failures turn into client-visible text (error bodies, SSE error events, x-rein-fail-open).

    >>> redact("Cannot connect to host 127.0.0.1:9199 ssl:default")
    'Cannot connect to host [address] ssl:default'
    >>> redact("POST http://llm.internal:8000/v1/chat/completions: 503")
    'POST [url]: 503'
"""
from __future__ import annotations

import re

_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>:,.;)]", re.I)
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b|\[[0-9a-f:]{3,}\](?::\d{1,5})?", re.I)
# host:port, the host starting with a letter (a Kubernetes service "vllm-0:8000"; not a time "10:30")
_HOST_PORT = re.compile(r"\b[a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*:\d{2,5}\b", re.I)


def redact(text: str) -> str:
    if "://" in text:
        text = _URL.sub("[url]", text)
    return _HOST_PORT.sub("[address]", _IP.sub("[address]", text))
