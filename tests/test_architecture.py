"""The layers of ARCHITECTURE.md hold: entry points -> orchestration -> domain packages,
with no package importing one that imports it back."""

from __future__ import annotations

import ast
import re
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


# The typed-settings rule: a domain package takes typed settings (frozen dataclasses the
# orchestration builds from the config, e.g. pipeline.gate.gate_settings -> GateSettings)
# and plain values, never the config. hydra.utils.instantiate of a plain `_target_` dict
# is allowed (a model, an augmentation, the trainer).
DOMAIN_PACKAGES = ("data", "features", "augment", "training", "demo", "models", "audit", "evaluation", "registry", "serving")
CONFIG_TYPES = {"DictConfig", "ListConfig"}
def annotation_names(annotation: ast.expr) -> set[str]:
    """The names an annotation mentions, also inside a string annotation ('DictConfig | None')."""
    names = set()
    for part in ast.walk(annotation):
        if isinstance(part, ast.Name):
            names.add(part.id)
        elif isinstance(part, ast.Attribute):
            names.add(part.attr)
        elif isinstance(part, ast.Constant) and isinstance(part.value, str):
            names |= set(re.findall(r"\w+", part.value))
    return names


def config_uses(source: str) -> list[str]:
    """What in `source` ties it to the config: imports of omegaconf or hydra's config
    objects, and parameters or returns annotated with DictConfig/ListConfig."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {alias.name}" for alias in node.names if alias.name.split(".")[0] in {"omegaconf", "hydra"}]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in {"omegaconf", "hydra"}:
            if node.module != "hydra.utils" or {alias.name for alias in node.names} - {"instantiate", "get_class"}:
                found.append(f"from {node.module} import {', '.join(alias.name for alias in node.names)}")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            annotations = [(argument.arg, argument.annotation) for argument in arguments] + [("return", node.returns)]
            for name, annotation in annotations:
                if annotation is not None and CONFIG_TYPES & annotation_names(annotation):
                    found.append(f"{node.name}({name}: config)")
    return found


def domain_modules_using_the_config() -> dict[str, list[str]]:
    offenders = {}
    for package in DOMAIN_PACKAGES:
        for path in sorted((SOURCE / package).rglob("*.py")):
            if uses := config_uses(path.read_text()):
                offenders[module_name(path)] = uses
    return offenders


def test_domain_packages_take_typed_settings_not_the_config():
    offenders = domain_modules_using_the_config()
    assert offenders == {}, f"domain modules taking the config (build typed settings in spira.pipeline instead): {offenders}"


def test_the_settings_rule_catches_each_way_of_taking_the_config():
    planted = [
        ("import omegaconf", "import omegaconf\n"),
        ("from omegaconf import DictConfig", "from omegaconf import DictConfig\n"),
        ("from hydra import compose", "from hydra import compose\n"),
        ("from hydra.utils import instantiate, to_absolute_path", "from hydra.utils import instantiate, to_absolute_path\n"),
        ("fit(cfg: config)", "def fit(cfg: DictConfig) -> None: ...\n"),
        ("fit(cfg: config)", "def fit(cfg: 'omegaconf.DictConfig') -> None: ...\n"),
        ("build(return: config)", "def build(x: int) -> ListConfig: ...\n"),
        ("read(node: config)", "def read(node: DictConfig | None = None): ...\n"),
    ]
    for expected, source in planted:
        assert expected in config_uses(source), (source, config_uses(source))
    settings_style = "from dataclasses import dataclass\nfrom hydra.utils import instantiate\n@dataclass(frozen=True)\nclass FitSettings:\n    epochs: int\ndef fit(settings: FitSettings, model: dict) -> None:\n    instantiate(model)\n"
    assert config_uses(settings_style) == []


def test_evaluation_registry_serving_demo_models_and_audit_take_no_config():
    offenders = domain_modules_using_the_config()
    assert not [module for module in offenders if unit_of(module) in {"spira.evaluation", "spira.registry", "spira.serving", "spira.demo", "spira.models", "spira.audit"}]
