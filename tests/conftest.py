"""Shared fixtures: a throw-away copy of the repository that runs the real DVC pipeline."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from spira.config import compose_params
# The tier rule: unmarked tests may not run the pipeline or train (tests/tier_guard.py).
from tier_guard import pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup  # noqa: F401
from tier_guard import refuse_unmarked

# pytester: tests/test_suite_hygiene.py runs planted offenders in a pytest of their own.
pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parents[1]
# What a clone needs to run the pipeline (everything else is generated).
PIPELINE_FILES = ("conf", "src", "dvc.yaml", ".dvc/config", ".dvcignore")

# The tiny cohort and 2-epoch schedule of conf/experiment/smoke.yaml.
SMOKE_EXPERIMENT = "smoke"


def run(command: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command with the virtualenv's tools first on PATH, as `make` does; `env` adds variables."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "WANDB_MODE": "offline"} | (env or {})
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def run_activated(script: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run a shell script as a user types it: `source .venv/bin/activate` first, on a PATH
    without the virtualenv (the README's recipe must work from a plain shell)."""
    venv_bin = Path(sys.prefix) / "bin"
    path = os.pathsep.join(entry for entry in os.environ["PATH"].split(os.pathsep) if Path(entry) != venv_bin)
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"} | {"PATH": path, "WANDB_MODE": "offline"}
    result = subprocess.run(["bash", "-c", f"set -e; source {venv_bin / 'activate'}; {script}"], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_pipeline_repo(destination: Path, experiment: str = SMOKE_EXPERIMENT) -> Path:
    """A fresh git + DVC repository holding the pipeline, with `experiment` as its default.

    The experiment is made the default in the copy's conf/config.yaml, so
    `dvc exp run -S ...` there recomposes on top of it, as in a user's repo.
    """
    refuse_unmarked("builds a pipeline repository (make_pipeline_repo)")
    destination.mkdir(parents=True, exist_ok=True)
    for name in PIPELINE_FILES:
        source = REPO_ROOT / name
        target = destination / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        elif source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    shutil.copy2(REPO_ROOT / ".dvc" / ".gitignore", destination / ".dvc" / ".gitignore")
    config = destination / "conf" / "config.yaml"
    default = "  - optional experiment: null\n"
    assert default in config.read_text(), "conf/config.yaml no longer has the experiment default slot"
    config.write_text(config.read_text().replace(default, f"  - experiment: {experiment}\n"))
    compose_params(destination / "params.yaml", config_dir=destination / "conf")
    run(["git", "init", "-q"], destination)
    run(["git", "add", "-A"], destination)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "pipeline"], destination)
    return destination


@pytest.fixture
def tiny_repo(tmp_path: Path) -> Path:
    return make_pipeline_repo(tmp_path / "repo")



def git_dvc_repo(destination: Path) -> Path:
    """An empty git + DVC repository with a committer configured."""
    destination.mkdir(parents=True)
    run(["git", "init", "-q"], destination)
    run(["git", "config", "user.name", "ct"], destination)
    run(["git", "config", "user.email", "ct@example.org"], destination)
    run(["dvc", "init", "-q"], destination)
    return destination


def committed_copy(source: Path, destination: Path) -> Path:
    """A copy of a pipeline repository (workspace, DVC cache, git history) with its
    outputs committed: a baseline for tests that change something and re-run."""
    shutil.copytree(source, destination, symlinks=True)
    run(["git", "add", "-A"], destination)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "baseline"], destination)
    return destination


@dataclass(frozen=True)
class PipelineRun:
    repo: Path
    output: str  # standard output and error of its one `dvc repro`


@pytest.fixture(scope="session")
def smoke_pipeline(tmp_path_factory: pytest.TempPathFactory) -> PipelineRun:
    """One tiny pipeline run through every stage with `dvc repro`, shared by the
    tests that only read its outputs (end to end, export, predict, serve). Tests
    must not modify it: write to their own tmp_path."""
    repo = make_pipeline_repo(tmp_path_factory.mktemp("smoke") / "repo")
    result = run(["dvc", "repro"], repo)
    return PipelineRun(repo, result.stdout + result.stderr)
