"""The layers of ARCHITECTURE.md hold: entry points -> orchestration -> domain packages,
with no package importing one that imports it back."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

from conftest import REPO_ROOT

SOURCE = REPO_ROOT / "src" / "spira"
ENTRY_POINTS = {"spira.stages", "spira.cli", "spira.experiment"}
ORCHESTRATION = {"spira.pipeline"}
MAX_MODULE_LINES = 400


def unit_of(module: str) -> str:
    """spira.data.prepare -> spira.data; spira.pipeline -> spira.pipeline."""
    return ".".join(module.split(".")[:2])


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    """Every spira module a file imports, at module level or inside a function."""
    imported = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names if alias.name.startswith("spira")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("spira") and node.level == 0:
            imported.add(node.module)
    return imported


def unit_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in SOURCE.rglob("*.py"):
        unit = unit_of(module_name(path))
        graph[unit] |= {unit_of(name) for name in project_imports(path)} - {unit}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting, done = [], set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            if cycle := visit(target):
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if cycle := visit(node):
            return cycle
    return None


def test_find_cycle_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_package_imports_one_that_imports_it_back():
    assert find_cycle(unit_graph()) is None


def test_dependencies_point_from_entry_points_to_domain_packages():
    graph = unit_graph()
    for unit, targets in graph.items():
        if unit in ENTRY_POINTS:
            continue
        assert not targets & ENTRY_POINTS, f"{unit} imports an entry point: {sorted(targets & ENTRY_POINTS)}"
        if unit not in ORCHESTRATION:
            assert not targets & ORCHESTRATION, f"domain package {unit} imports the orchestration layer"
    # Every DVC stage goes through the orchestration, as the Hydra entry does.
    for entry in [*(SOURCE / "stages").glob("[!_]*.py"), SOURCE / "experiment.py"]:
        assert "spira.pipeline" in {unit_of(name) for name in project_imports(entry)}, entry.name


def test_modules_stay_small():
    sizes = {module_name(path): len(path.read_text().splitlines()) for path in SOURCE.rglob("*.py")}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_MODULE_LINES} == {}
