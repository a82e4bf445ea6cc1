"""How the code hangs together: no import circles in sepkit/ or bench/, and the package never
imports the benchmarks or the tests."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(folder: str, module_level_only: bool) -> dict[str, set[str]]:
    """Module -> the modules of the same repository it imports (``from a import b`` counts ``a.b``
    when that is a module, else ``a``)."""
    files = {_module(p): p for p in (ROOT / folder).rglob("*.py")}
    known = set(files) | {_module(p) for p in (ROOT / "sepkit").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        found = set()
        for node in nodes:
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module for a in node.names
                }
        graph[name] = {m for m in found if m in known and m != name}
    return graph


@pytest.mark.parametrize(("folder", "module_level_only"), [("sepkit", True), ("bench", False)])
def test_no_import_circles(folder: str, module_level_only: bool) -> None:
    """sepkit's modules import each other without a circle at import time (lazy imports inside
    functions may point upwards); bench's without any circle at all."""
    graph = imports(folder, module_level_only)
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_the_package_never_imports_benchmarks_or_tests() -> None:
    for path in (ROOT / "sepkit").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            assert not [n for n in names if n.split(".")[0] in ("bench", "tests")], path
