"""`spira predict|serve --model prod|vN.N.N`: a registered version's export, read from git
and the DVC cache, in a real git + DVC repository with two versions; and the serving
install's requirements, which hold no training package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import soundfile as sf
from packaging.requirements import Requirement

from conftest import REPO_ROOT, PipelineRun, git_dvc_repo, run
from spira.pipeline.serving import resolve_model
from spira.registry.versions import RegistryError, assign_prod, register_and_assign_prod
from test_lock import dependency_closure
from test_serving import EXPORT, first_answer, free_port, raw_test_files

MODEL = "spira-model"
TRAINING_PACKAGES = {"torch", "torchaudio", "lightning", "pytorch-lightning", "hydra-core", "omegaconf", "dvc", "gto", "scipy", "pandas"}
TRAINING_MODULES = ("torch", "torchaudio", "lightning", "pytorch_lightning", "hydra", "omegaconf", "dvc", "gto", "scipy", "pandas")
# v2's model.json: the same network with every file at or above its band (decision `patient`).
ALL_PATIENT = {"threshold": 0.0, "inconclusive_band": [0.0, 0.0]}


def commit_export(repo: Path, source: Path, decision: dict | None = None) -> None:
    """models/export as the output of a real DVC stage `export` (copying `source`), committed."""
    current = repo / "exports/current"
    shutil.rmtree(current, ignore_errors=True)
    shutil.copytree(source, current)
    if decision:
        contract = json.loads((current / "model.json").read_text())
        contract["decision"] |= decision
        (current / "model.json").write_text(json.dumps(contract, indent=2))
    run(["dvc", "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "export"], repo)


@pytest.fixture(scope="module")
def registry_repo(smoke_pipeline: PipelineRun, tmp_path_factory) -> Path:
    """v1.0.0: the smoke pipeline's export; v2.0.0 (prod): the same network deciding `patient` for everything."""
    repo = git_dvc_repo(tmp_path_factory.mktemp("registry") / "repo")
    (repo / "params.yaml").write_text(f"gate:\n  artifact: {MODEL}\n")
    (repo / "dvc.yaml").write_text(
        "stages:\n  export:\n    cmd: mkdir -p models && cp -r exports/current models/export\n"
        "    deps: [exports/current]\n    outs: [models/export]\n"
    )
    export = smoke_pipeline.repo / EXPORT
    commit_export(repo, export)
    register_and_assign_prod(repo, MODEL, {}, "promote: one")
    commit_export(repo, export, ALL_PATIENT)
    register_and_assign_prod(repo, MODEL, {}, "promote: two")
    return repo


@pytest.mark.slow
def test_prod_and_versions_resolve_to_their_exports(registry_repo: Path, smoke_pipeline: PipelineRun, tmp_path: Path):
    original = json.loads((smoke_pipeline.repo / EXPORT / "model.json").read_text())["decision"]["threshold"]
    assert original > 0
    assert resolve_model("v1.0.0", registry_repo).contract["decision"]["threshold"] == original
    assert resolve_model("prod", registry_repo).contract["decision"]["threshold"] == 0.0
    assert resolve_model("v2.0.0", registry_repo).contract["decision"]["inconclusive_band"] == [0.0, 0.0]

    audio = str(next(iter(raw_test_files(smoke_pipeline.repo).values())))
    prod = run(["spira", "predict", audio, "--model", "prod"], registry_repo)
    assert json.loads(prod.stdout)["decision"] == "patient"
    first = json.loads(run(["spira", "predict", audio, "--model", "v1.0.0"], registry_repo).stdout)
    assert first["probability"] == json.loads(prod.stdout)["probability"]  # the same network
    expected = json.loads(run(["spira", "predict", audio, "--model", str(smoke_pipeline.repo / EXPORT)], tmp_path).stdout)
    assert first["decision"] == expected["decision"] and first["model_version"] == expected["model_version"]

    # A rollback moves what `prod` means.
    assign_prod(registry_repo, MODEL, "v1.0.0", "rollback from v2.0.0 to v1.0.0: test")
    try:
        assert resolve_model("prod", registry_repo).contract["decision"]["threshold"] == original
        listed = run(["spira", "models"], registry_repo).stdout
        assert "v1.0.0   prod" in listed and "v2.0.0" in listed
    finally:
        assign_prod(registry_repo, MODEL, "v2.0.0", "back to v2.0.0")


@pytest.mark.slow
def test_unknown_versions_and_exports_missing_from_the_cache_say_what_fetches_them(registry_repo: Path, tmp_path: Path):
    with pytest.raises(RegistryError, match=r"v9.0.0: no such version of spira-model .*registered: v1.0.0, v2.0.0.*git fetch --tags"):
        resolve_model("v9.0.0", registry_repo)
    refused = run(["spira", "predict", "any.wav", "--model", "v9.0.0"], registry_repo, check=False)
    assert refused.returncode == 2 and "spira predict: v9.0.0: no such version" in refused.stderr
    # A clone without the DVC cache: the tags are there, the exports are not.
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(registry_repo), str(clone)], tmp_path)
    run(["git", "fetch", "-q", "--tags"], clone)
    with pytest.raises(RegistryError) as error:
        resolve_model("prod", clone)
    message = str(error.value)
    assert message.startswith(f"{MODEL}@v2.0.0: its export (models/export, ") and "is not in the local DVC cache" in message
    assert "dvc fetch --all-tags" in message and f"dvc get . models/export --rev {MODEL}@v2.0.0" in message
    # No prod yet: a repository whose registry has versions only.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    run(["git", "init", "-q"], fresh)
    (fresh / "params.yaml").write_text(f"gate:\n  artifact: {MODEL}\n")
    served = run(["spira", "serve", "--model", "prod"], fresh, check=False)
    assert served.returncode == 2 and f"spira serve: no version of {MODEL} is in prod" in served.stderr


@pytest.mark.slow
def test_spira_serve_a_registered_version(registry_repo: Path):
    port = free_port()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["spira", "serve", "--model", "v1.0.0", "--port", str(port)], cwd=registry_repo, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        model = first_answer(server, f"http://127.0.0.1:{port}/model").json()
        assert model["decision"]["threshold"] > 0  # v1's contract, not prod's (v2)
    finally:
        server.terminate()
        server.communicate(timeout=30)


def spira_without_training_packages(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """`spira ARGS` in a process where no training package can be imported (a None entry in
    sys.modules fails every import of it, as when it is not installed)."""
    script = f"import sys; sys.modules.update(dict.fromkeys({TRAINING_MODULES!r})); from spira.cli import main; main({list(args)!r})"
    return run([sys.executable, "-c", script], repo, check=False)


@pytest.mark.slow
def test_the_spira_command_without_the_training_packages(registry_repo: Path, smoke_pipeline: PipelineRun):
    """As in the serving install: predict and models work, a training subcommand says what to install."""
    audio = str(next(iter(raw_test_files(smoke_pipeline.repo).values())))
    predicted = spira_without_training_packages(registry_repo, "predict", audio, "--model", "prod")
    assert predicted.returncode == 0, predicted.stderr
    assert json.loads(predicted.stdout)["decision"] == "patient"
    assert "v2.0.0   prod" in spira_without_training_packages(registry_repo, "models").stdout
    refused = spira_without_training_packages(registry_repo, "promote")
    assert refused.returncode == 1
    assert refused.stderr.strip() == ("error: spira promote: needs the train dependencies (omegaconf is not installed): "
                                      "`make install` installs everything, `pip install '.[train]'` these")  # fmt: skip


def serving_requirements() -> set[str]:
    """Every package `pip install '.[serve]'` installs: the core and the serve extra, their dependencies followed."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    installed, _ = dependency_closure([Requirement(text) for text in [*project["dependencies"], *project["optional-dependencies"]["serve"]]])
    return installed


def test_the_serving_install_holds_no_training_package():
    installed = serving_requirements()
    assert {"numpy", "soundfile", "onnxruntime", "pyyaml", "fastapi", "uvicorn", "python-multipart"} <= installed
    assert not installed & TRAINING_PACKAGES, sorted(installed & TRAINING_PACKAGES)
