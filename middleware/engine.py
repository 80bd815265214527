"""The engine every surface shares: models, policies, plug-ins and their compiled pipelines.

It is the one builder of the stages: the proxy, ``Rein`` and the SDK's wrappers all get their
pipeline from ``Engine.pipeline``, so a plug-in, the persona store or rein's own model is never
on one path and missing on another.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import inception
import refiners
from middleware.incidents import Incidents
from middleware.models import resolve_model
from middleware.models.charged import Charged
from middleware.models.instrumented import Instrumented
from middleware.pipeline import Pipeline
from policies.loader import load_policy
from policies.chat_model import ChatModel
from policies.schema import Policy
from refiners.store import PersonaStore, ProfileKeeper, open_store


class Engine:
    """Holds the agent model, rein's own model, and one compiled pipeline per policy.

    ``detectors`` and ``refiners`` are plug-ins added to every policy's own (its ``plugins:``);
    see ``policies.plugins``. Example::

        engine = Engine(agent=ScriptedModel(["hi"]), policy="default", detectors=[NoRefunds()])
        state = await engine.pipeline().run(request)
        engine.reload(load_policy("my.yaml"))   # later requests get the new policy
    """

    def __init__(self, agent: ChatModel, policy: str | Policy = "default",
                 rein_model: ChatModel | None = None, personas: PersonaStore | None = None,
                 detectors: Sequence[Any] = (), refiners: Sequence[Any] = (), decisions: Any = None,
                 shadow: bool | None = None, incidents: Incidents | None = None):
        self.agent = agent
        self.incidents = incidents or Incidents()  # failures the agent reported: log line, header, webhook
        self.detectors, self.refiners = list(detectors), list(refiners)
        # rein's own prompts (diagnosis, refiners) go only to a model the operator named: the
        # agent may have tools of its own, and the embedded 135M model finds nothing. None: rules only.
        self.rein_model = rein_model
        # Persona profiles: the SDK reads/deletes with `await engine.personas.get(user)` / `.delete(user)`.
        self.personas = personas
        self.profiles = ProfileKeeper(personas) if personas is not None else None
        # The decision log (middleware.decisions.DecisionLog) and shadow mode for every policy (--shadow).
        # Unset: REIN_SHADOW, so an SDK user turns shadow on as a proxy operator does.
        self.decisions = decisions
        self.shadow = shadow if shadow is not None else os.environ.get("REIN_SHADOW", "").lower() in ("1", "true", "yes")
        self.default_policy = policy if isinstance(policy, Policy) else load_policy(policy)
        self._pipelines: dict[str, Pipeline] = {}
        self.pipeline()  # compile now: a bad policy fails at start-up, not on the first request

    def rules_only(self, policy: Policy | None = None) -> str | None:
        """Why ``policy`` (default: the engine's) runs without its model stages, or None."""
        policy = policy or self.default_policy
        wants = (policy.inception.enabled and policy.inception.llm) or (policy.refiners.enabled and policy.refiners.llm)
        if self.rein_model is not None or not wants:
            return None
        return f"policy {policy.name!r} runs its rules only: no middleware model named"

    def policy(self, name_or_path: str | Policy | None = None) -> Policy:
        if isinstance(name_or_path, Policy):
            return name_or_path
        return self.default_policy if name_or_path is None else load_policy(name_or_path)

    def pipeline(self, name_or_path: str | Policy | None = None, agent: ChatModel | None = None) -> Pipeline:
        """The pipeline of a policy (default: the engine's), around ``agent`` (default: the
        engine's; another agent, e.g. an SDK wrapper's, gets its own uncached graph)."""
        policy = self.policy(name_or_path)
        if agent is not None:
            return self._make(policy, agent)
        key = policy.name + "@" + str(id(policy))
        if key not in self._pipelines:
            self._pipelines[key] = self._make(policy, self.agent)
        return self._pipelines[key]

    def reload(self, policy: Policy) -> Pipeline:
        """Make ``policy`` the default. It is built first: one that cannot build raises and the
        running policy stays. Requests already running keep the pipeline they started with."""
        pipeline = self._make(policy, self.agent)
        key = policy.name + "@" + str(id(policy))
        self._pipelines = {key: pipeline}  # a new dict: readers of the old one are not disturbed
        self.default_policy = policy
        return pipeline

    def _make(self, policy: Policy, agent: ChatModel) -> Pipeline:
        # Every model call of the stages goes through one wrapper that owns its `chat` span and usage;
        # rein's own model's also charges the turn's budget (middleware.models.charged).
        own = Charged.wrap(self.rein_model)
        return Pipeline(policy, Instrumented.wrap(agent), inception.build(policy, own, self.detectors),
                        refiners.build(policy, own, self.refiners), profiles=self.profiles,
                        decisions=self.decisions, shadow=self.shadow, incidents=self.incidents)

    @classmethod
    def from_settings(cls, settings: Any) -> "Engine":
        agent = resolve_model(settings.upstream, settings.upstream_api_key, settings.upstream_timeout_s,
                              idle_timeout=getattr(settings, "stream_idle_timeout_s", None))
        spec = settings.middleware_model
        # "upstream" reuses the upstream on purpose; unset, rein's model stages do not run.
        rein_model = agent if spec == "upstream" else resolve_model(spec, settings.middleware_api_key) if spec else None
        personas = open_store(getattr(settings, "persona_db", None), ttl_days=getattr(settings, "persona_ttl_days", None))
        incidents = Incidents(getattr(settings, "incident_webhook", None))
        from middleware.decisions import DecisionLog

        decisions = DecisionLog.from_settings(settings)  # None unless --decision-db or --shadow
        return cls(agent, settings.policy, rein_model, personas=personas, decisions=decisions,
                   shadow=getattr(settings, "shadow", False), incidents=incidents)
