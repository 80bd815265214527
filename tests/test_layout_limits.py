"""The size limits the team keeps (issue 21): no file over 300 lines outside tests/ and bench/, no
class over 12 methods in middleware/. Small files and small classes are what lets a newcomer follow
one request; a limit nobody checks drifts."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("policies", "inception", "refiners", "middleware", "sim_tests")
MAX_LINES = 300
MAX_METHODS = 12


def _sources(*packages: str) -> list[Path]:
    return sorted(p for package in packages for p in (ROOT / package).rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name


def too_long(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        lines = path.read_text(encoding="utf-8").count("\n")
        if lines > MAX_LINES:
            out.append(f"{_name(path)}: {lines} lines")
    return out


def too_many_methods(paths: list[Path]) -> list[str]:
    out = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                methods = sum(isinstance(b, (ast.FunctionDef, ast.AsyncFunctionDef)) for b in node.body)
                if methods > MAX_METHODS:
                    out.append(f"{_name(path)}: class {node.name} has {methods} methods")
    return out


def test_no_file_over_300_lines_outside_tests_and_bench():
    assert _sources(*PACKAGES), "no sources found: the check would pass on nothing"
    assert too_long(_sources(*PACKAGES)) == []


def test_no_class_over_12_methods_in_middleware():
    assert too_many_methods(_sources("middleware")) == []


def test_the_checks_see_a_long_file_and_a_big_class(tmp_path):
    long_file = tmp_path / "long.py"
    long_file.write_text("x = 1\n" * (MAX_LINES + 1))
    big = tmp_path / "big.py"
    big.write_text("class Big:\n" + "".join(f"    def m{i}(self): ...\n" for i in range(MAX_METHODS + 1)))
    small = tmp_path / "small.py"
    small.write_text("class Small:\n" + "".join(f"    def m{i}(self): ...\n" for i in range(MAX_METHODS)))
    assert too_long([long_file, small]) == [f"long.py: {MAX_LINES + 1} lines"]
    assert too_many_methods([big, small]) == [f"big.py: class Big has {MAX_METHODS + 1} methods"]
