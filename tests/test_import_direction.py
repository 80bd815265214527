"""Arrows point one way: policies <- inception, refiners <- middleware <- sim_tests (DESIGN.md).

Every import in every module, at the top or inside a function, is read from the source."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = ("policies", "inception", "refiners", "middleware", "sim_tests")
MAY_IMPORT = {
    "policies": set(),
    "inception": {"policies"},
    "refiners": {"policies"},
    "middleware": {"policies", "inception", "refiners"},
    "sim_tests": {"policies", "inception", "refiners", "middleware"},
}


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.append((node.lineno, node.module))
    return out


def wrong_way(package: str) -> list[str]:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, name in imports_of(path):
            top = name.split(".")[0]
            if top in OURS and top != package and top not in MAY_IMPORT[package]:
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", OURS)
def test_imports_point_one_way(package):
    assert wrong_way(package) == []


def test_the_check_sees_a_wrong_way_import(tmp_path, monkeypatch):
    (tmp_path / "refiners").mkdir()
    (tmp_path / "refiners" / "x.py").write_text("def f():\n    from middleware.engine import Engine\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert wrong_way("refiners") == ["refiners/x.py:2 imports middleware.engine"]


def test_rein_finds_the_simulator_commands_through_the_entry_point_group():
    from middleware.cli import GROUP, subcommands

    assert subcommands()["sim"].__name__ == "sim_tests.cli"
    text = (ROOT / "pyproject.toml").read_text()
    assert f'[project.entry-points."{GROUP}"]' in text and 'sim = "sim_tests.cli"' in text


def test_no_circle_between_the_sdk_and_its_adapters():
    """The SDK builds on the adapters and the engine; they never reach back for it."""
    bad = [f"{p.relative_to(ROOT)}:{line}" for p in sorted((ROOT / "middleware").rglob("*.py"))
           if p.name not in ("sdk.py", "__init__.py") or p.parent.name != "middleware"
           for line, name in imports_of(p) if name == "middleware.sdk"]
    assert bad == []
