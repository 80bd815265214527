"""Loading a suite: its scenarios, then what must hold across them (unique ids, scorers that exist).

Apart from ``sim_tests.scenario`` because checking the scorer names needs ``sim_tests.scorers``,
which reads scenarios: the suite's schema and its loading would otherwise import each other.
"""
from __future__ import annotations

from sim_tests.scenario import Scenario, ScenarioError, Suite, read_yaml, parse_suite, suite_path
from sim_tests.scorers import resolve


def load_suite(name_or_path: str) -> Suite:
    """A shipped suite by name, a suite or scenario YAML file, or a folder of them."""
    path = suite_path(name_or_path)
    if path.is_dir():
        scenarios: list[Scenario] = []
        for file in sorted(path.rglob("*.y*ml")):
            scenarios += parse_suite(read_yaml(file), str(file)).scenarios
        suite = Suite(name=path.name, scenarios=scenarios)
    else:
        suite = parse_suite(read_yaml(path), str(path))
    if suite.scorers:  # an unknown scorer is a load error, not a run full of errors
        try:
            resolve(suite.scorer_specs())
        except (ValueError, TypeError) as e:
            raise ScenarioError(f"{path}: scorers: {e}") from None
    ids = [s.id for s in suite.scenarios]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ScenarioError(f"{path}: scenario ids must be unique; repeated: {', '.join(duplicates)}")
    return suite
