"""Simulated-failure test suites: run failure scenarios against an agent with and without rein.

The pieces, each small and replaceable (after inspect_ai's Task/Solver/Scorer shape):

- ``scenario``  — scenarios and suites (YAML, pydantic, JSON Schema); shipped suites in ``suites/``
- ``domains``   — retail and travel: typed tools over a seeded in-memory DB with a stable hash
- ``failures``  — generators that turn a clean scenario into one variant per error type
- ``users``     — the scripted user (deterministic, for CI) and the LLM user (stop tokens)
- ``agents``    — agents under test: OpenAI-compatible endpoint, callable, LangGraph graph, reference
- ``arms``      — ``bare``, ``rein`` (a policy) and ``prompt`` (the ``system_note`` baseline)
- ``trial``     — one trial; ``runner`` — k trials × arms, concurrency, resume
- ``scorers``, ``metrics`` — success criteria, success rate, pass^k, cost and latency
- ``reports``   — Markdown, self-contained HTML, JUnit XML, all from the run log

From the command line: ``rein sim list | run SUITE | generate SOURCE | report LOG``; from pytest:
``pytest --rein-suite SUITE``. Example::

    log = await Runner(load_suite("smoke"), load_agent("scripted"), make_arms(["bare", "rein"]),
                       RunConfig(suite="smoke", agent="scripted")).run()
"""
import importlib
from typing import Any

# Lazy: the pytest plugin (loaded in every pytest run) imports this package, and must stay cheap.
_EXPORTS = {"AgentUnderTest": "agents", "load_agent": "agents", "make_arms": "arms", "RunConfig": "log",
            "RunLog": "log", "TrialRecord": "log", "Runner": "runner", "Scenario": "scenario",
            "ScenarioError": "scenario", "Suite": "scenario", "load_suite": "suites"}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    return getattr(importlib.import_module(f"sim_tests.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
