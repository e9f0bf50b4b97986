"""dvc.yaml cannot go stale: every project module a stage runs is one of its deps,
and a stage reads only the params keys it declares."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ReadonlyConfigError

from conftest import REPO_ROOT, run
from spira.config import declared_params, load_params, restrict_params

SOURCE_ROOT = REPO_ROOT / "src"
PIPELINE = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    """The file of project module `name` (a package's __init__.py), None for anything else."""
    relative = Path(*name.split("."))
    for candidate in (SOURCE_ROOT / relative.with_suffix(".py"), SOURCE_ROOT / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_names(path: Path, package: str) -> set[str]:
    """Every module name a file imports, at module level or inside functions, relative imports resolved;
    `from a import b` yields both a and a.b (b may be a submodule)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = importlib.util.resolve_name("." * node.level + (node.module or ""), package) if node.level else node.module
            names.add(base)
            names |= {f"{base}.{alias.name}" for alias in node.names}
    return names


def with_parents(name: str) -> list[str]:
    """Importing a.b.c runs a/__init__, a/b/__init__ and a/b/c."""
    parts = name.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts) + 1)]


def config_targets(cfg, keys: list[str]) -> set[str]:
    """Modules named by `_target_` values under the stage's params: instantiate imports them."""
    targets = set()

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_target_" and isinstance(value, str):
                    targets.add(value.rsplit(".", 1)[0])
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(OmegaConf.to_container(restrict_params(cfg, keys), resolve=False))
    return targets


def stage_modules(entry: str, extra: set[str] = frozenset()) -> set[Path]:
    """The project files the entry module and `extra` modules import, transitively."""
    seen: set[Path] = set()
    pending = [*with_parents(entry), *(parent for name in extra for parent in with_parents(name))]
    while pending:
        name = pending.pop()
        path = module_file(name)
        if path is None or path in seen:
            continue
        seen.add(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        pending += [parent for imported in imported_names(path, package) for parent in with_parents(imported)]
    return seen


def entry_module(stage: dict) -> str:
    command = stage["cmd"].split()
    assert command[:2] == ["python", "-m"], f"stage command {stage['cmd']!r} is not `python -m <module>`"
    return command[2]


def covered(path: Path, deps: list[str]) -> bool:
    relative = path.relative_to(REPO_ROOT)
    return any(relative == Path(dep) or Path(dep) in relative.parents for dep in deps)


def test_import_analysis_follows_function_level_and_relative_imports():
    files = {path.relative_to(SOURCE_ROOT).as_posix() for path in stage_modules("spira.stages.train")}
    # spira.pipeline.training_run imports the loggers of spira.tracking; module.py the metrics; all through packages.
    assert {"spira/__init__.py", "spira/stages/train.py", "spira/tracking.py", "spira/metrics.py", "spira/training/module.py"} <= files
    assert "spira/demo/cohort.py" not in files
    assert imported_names(SOURCE_ROOT / "spira" / "tracking.py", "spira") >= {"wandb"}  # imported inside a function


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_every_module_a_stage_runs_is_a_declared_dep(name):
    stage = PIPELINE[name]
    keys = stage.get("params", [])
    extra = {target for target in config_targets(load_params(REPO_ROOT / "params.yaml"), keys) if target.startswith("spira")}
    missing = sorted(path.relative_to(REPO_ROOT).as_posix() for path in stage_modules(entry_module(stage), extra) if not covered(path, stage["deps"]))
    assert not missing, f"stage {name} runs these modules but dvc.yaml does not list them as deps: {missing}"


def test_a_stage_sees_only_its_declared_params():
    full = load_params(REPO_ROOT / "params.yaml")
    cfg = restrict_params(full, declared_params("featurize", REPO_ROOT / "dvc.yaml"))
    assert cfg.features == full.features and cfg.data.root == full.data.root
    with pytest.raises(ConfigAttributeError):
        cfg.data.split  # featurize does not declare data.split
    with pytest.raises(ConfigAttributeError):
        cfg.evaluate
    with pytest.raises(ReadonlyConfigError):
        cfg.features.n_mfcc = 13


def test_a_declared_key_missing_from_the_params_is_an_error():
    with pytest.raises(KeyError, match="data.nonexistent"):
        restrict_params(load_params(REPO_ROOT / "params.yaml"), ["data.nonexistent"])


def test_train_does_not_depend_on_the_decision_threshold():
    assert not any(key.startswith("evaluate") for key in PIPELINE["train"]["params"])


@pytest.mark.slow
def test_a_stage_reading_a_key_it_does_not_declare_fails(tiny_repo: Path):
    pipeline = tiny_repo / "dvc.yaml"
    declared = "    params:\n      - demo_cohort\n"
    assert declared in pipeline.read_text()
    pipeline.write_text(pipeline.read_text().replace(declared, "    params:\n      - seed\n"))
    result = run([sys.executable, "-m", "spira.stages.generate_demo"], tiny_repo, check=False)
    assert result.returncode != 0
    assert "ConfigAttributeError" in result.stderr and "demo_cohort" in result.stderr
    assert not (tiny_repo / "data" / "demo").exists()
