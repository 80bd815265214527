"""rein's core: models, the pipeline, and the surfaces over it (proxy, SDK, CLI).

``from middleware import Rein`` is the SDK entry point (imported lazily: the proxy
should not pay for LangChain imports it never uses).
"""
from __future__ import annotations

from typing import Any

__all__ = ["Rein", "Engine"]


def __getattr__(name: str) -> Any:
    if name == "Rein":
        from middleware.sdk import Rein

        return Rein
    if name == "Engine":
        from middleware.engine import Engine

        return Engine
    raise AttributeError(name)
