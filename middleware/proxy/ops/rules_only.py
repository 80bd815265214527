"""Says on each answer that rein's model stages are off, when no middleware model was named.

An operator who runs ``--policy default`` without ``--middleware-model`` gets the policy's rules
(structural detectors, the deterministic factuality pass) and no diagnosis or refiner model call:
rein never sends its own prompts to the upstream unless told to (``--middleware-model upstream``).
The start-up line says so once; this header says so on every answer of a policy that wanted a model::

    x-rein-model-stages: off (policy 'default' runs its rules only: no middleware model named)
"""
from __future__ import annotations

from typing import Any

from policies.loader import PolicyError, load_policy, shipped

HEADER = b"x-rein-model-stages"


class RulesOnlyHeader:
    """Pure ASGI: adds the header to responses whose ``x-rein-policy`` names a policy that wanted a model."""

    def __init__(self, app: Any, engine: Any):
        self.app, self.engine = app, engine
        self._notes: dict[bytes, bytes | None] = {}

    def _note(self, policy_name: bytes) -> bytes | None:
        if policy_name not in self._notes:
            name = policy_name.decode("latin-1")
            policy = self.engine.default_policy
            if name != policy.name:
                try:
                    policy = load_policy(name) if name in shipped() else None
                except PolicyError:
                    policy = None
            why = self.engine.rules_only(policy) if policy is not None else None
            self._notes[policy_name] = f"off ({why})".encode() if why else None
        return self._notes[policy_name]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def tagged(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                policy = next((v for k, v in message.get("headers", ()) if k == b"x-rein-policy"), None)
                note = self._note(policy) if policy is not None else None
                if note is not None:
                    message = {**message, "headers": [*message.get("headers", ()), (HEADER, note)]}
            await send(message)

        await self.app(scope, receive, tagged)


def wrap(app: Any, engine: Any) -> Any:
    """``app`` with the header when ``engine`` runs any policy without a model; else ``app`` itself."""
    return RulesOnlyHeader(app, engine) if engine.rein_model is None else app
