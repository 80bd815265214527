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


# ---- no circle between files ------------------------------------------------------------------
# Every import that runs counts, at the top of a file or inside a function; one under
# ``if TYPE_CHECKING:`` never runs (it names a type for annotations) and does not.
# An import names one file: ``import a.b.c`` and ``from a.b.c import x`` name a/b/c.py (or its
# package's __init__.py); ``from a.b import c`` names a/b/c.py when c is a module, else a/b/__init__.py.
# The parent packages' __init__ files an import runs first are not named by it, so not counted.
def module_files(root: Path) -> dict[str, Path]:
    """Our modules by dotted name: a package's is its __init__.py."""
    out = {}
    for package in OURS:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def named_modules(path: Path, name: str, modules: dict[str, Path]) -> list[str]:
    """The modules of ours each import of ``path`` (module ``name``) names, in source order."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                   for stmt in block.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import a.b.c` of a name inside a module
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append(target)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def import_circles(root: Path) -> list[list[str]]:
    """Each set of our files that import each other round in a circle (strongly connected), as
    repository paths, sorted; empty when the imports between files form no circle."""
    modules = module_files(root)
    graph = {name: sorted(set(named_modules(path, name, modules))) for name, path in modules.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(modules[m].relative_to(root).as_posix() for m in component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in graph:
        if v not in index:
            visit(v)
    return sorted(circles)


def test_no_import_circle_between_files():
    assert import_circles(ROOT) == []


def test_the_check_sees_a_circle(tmp_path):
    (tmp_path / "middleware" / "pipeline").mkdir(parents=True)
    (tmp_path / "middleware" / "__init__.py").write_text("")
    (tmp_path / "middleware" / "pipeline" / "__init__.py").write_text("from middleware.pipeline import stages\n")
    (tmp_path / "middleware" / "pipeline" / "stages.py").write_text("from . import routes\n")
    (tmp_path / "middleware" / "pipeline" / "routes.py").write_text("def f():\n    from middleware.pipeline.stages import g\n")
    (tmp_path / "middleware" / "state.py").write_text("import middleware.pipeline\n")
    assert import_circles(tmp_path) == [["middleware/pipeline/routes.py", "middleware/pipeline/stages.py"]]
    (tmp_path / "middleware" / "pipeline" / "routes.py").write_text("import middleware.state\n")
    assert import_circles(tmp_path) == [["middleware/pipeline/__init__.py", "middleware/pipeline/routes.py",
                                         "middleware/pipeline/stages.py", "middleware/state.py"]]
    (tmp_path / "middleware" / "state.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import middleware.pipeline\n")
    assert import_circles(tmp_path) == []  # a name for annotations only: never imported
