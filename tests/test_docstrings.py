"""The examples in the extension points' docstrings run: a plug-in author who copies one gets code that works."""
from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["policies.plugins", "refiners.base", "inception.structural", "sim_tests.scorers",
           "policies.cel_names", "inception.actions.records", "middleware.adapters.clock"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples to run"
    assert result.failed == 0
