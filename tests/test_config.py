"""The committed params.yaml is conf/ composed, and every config group composes."""

import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO_ROOT
from spira.config import PAIRS_GROUP, UnsupportedPairError, compose_config, compose_params, supported_pairs


def test_committed_params_yaml_is_conf_composed(tmp_path: Path):
    compose_params(tmp_path / "params.yaml")
    assert (tmp_path / "params.yaml").read_text() == (REPO_ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run `make params` and commit it"
    )


# conf/hydra holds Hydra's own groups (the launcher): tests/test_experiment_config.py composes them.
@pytest.mark.parametrize("group", sorted(p.name for p in (REPO_ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra"))
def test_every_option_of_every_group_composes_and_resolves(group: str):
    """Every option composes and every interpolation in it resolves, as writing params.yaml needs
    (a model or features option with a partner of a supported pair; every pair as a whole)."""
    pairs = supported_pairs(REPO_ROOT / "conf")
    for option in sorted((REPO_ROOT / "conf" / group).glob("*.yaml")):
        if group == "model":
            overrides = [f"model={option.stem}", f"features={dict(pairs)[option.stem]}"]
        elif group == "features":
            overrides = [f"features={option.stem}", f"model={next(m for m, f in pairs if f == option.stem)}"]
        elif group == PAIRS_GROUP:
            model, features = option.stem.rsplit("_", 1)
            overrides = [f"model={model}", f"features={features}"]
        else:
            overrides = [f"{group}={option.stem}"]
        cfg = compose_config(overrides)
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


def test_every_model_and_every_features_option_belongs_to_a_supported_pair():
    pairs = supported_pairs(REPO_ROOT / "conf")
    assert {path.stem for path in (REPO_ROOT / "conf/model").glob("*.yaml")} == {model for model, _ in pairs}
    assert {path.stem for path in (REPO_ROOT / "conf/features").glob("*.yaml")} == {features for _, features in pairs}
    assert ("cnn6", "logmel") in pairs and ("spira_conv_v2", "mfcc") in pairs and ("cnn6", "mfcc") not in pairs


@pytest.mark.parametrize(
    ("overrides", "model", "features"),
    [(["model=cnn6"], "cnn6", "mfcc"), (["features=logmel"], "spira_conv_v2", "logmel"), (["model=mfcc_transformer", "features=logmel"], "mfcc_transformer", "logmel"),
     (["experiment=cnn6", "features=mfcc"], "cnn6", "mfcc")],
)
def test_an_unsupported_model_and_features_pair_fails_to_compose_naming_the_supported_ones(overrides: list[str], model: str, features: str):
    with pytest.raises(UnsupportedPairError) as raised:
        compose_config(overrides)
    message = str(raised.value)
    assert "\n" not in message and message.startswith(f"model={model} does not read features={features}; supported pairs: ")
    assert "model=cnn6 features=logmel" in message and "model=spira_conv_v2 features=mfcc" in message


def test_spira_params_refuses_an_unsupported_pair_with_one_line_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "params.yaml"
    result = subprocess.run([sys.executable, "-m", "spira.cli", "params", "--output", str(out), "model=cnn6"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 2 and not out.exists()
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and result.stderr.startswith("error: spira params: model=cnn6 does not read features=mfcc; supported pairs:")


def test_no_run_dependent_interpolations_in_conf():
    """${hydra:..}, ${now:..} and ${oc.env:..} would bake a time or a path into params.yaml."""
    for path in (REPO_ROOT / "conf").rglob("*.yaml"):
        text = path.read_text()
        for forbidden in ("${hydra:", "${now:", "${oc.env:"):
            assert forbidden not in text, f"{path}: {forbidden}"


def test_the_project_is_found_at_or_above_the_working_directory(tmp_path, monkeypatch):
    from spira.config import find_project, project_config_dir

    monkeypatch.delenv("SPIRA_PROJECT", raising=False)
    (tmp_path / "conf").mkdir()
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    deeper = tmp_path / "a" / "b"
    deeper.mkdir(parents=True)
    assert find_project(deeper) == tmp_path.resolve()
    assert project_config_dir(tmp_path) == tmp_path.resolve() / "conf"


def test_no_project_is_one_line_naming_where_it_looked(tmp_path, monkeypatch):
    from spira.config import NoProjectError, find_project

    monkeypatch.delenv("SPIRA_PROJECT", raising=False)
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")  # dvc.yaml without conf/ is not a project
    with pytest.raises(NoProjectError, match=r"no SPIRA project \(dvc.yaml and conf/\) at or above .*; run inside a project or set SPIRA_PROJECT") as refused:
        find_project(tmp_path)
    assert str(tmp_path.resolve()) in str(refused.value) and "\n" not in str(refused.value)


def test_spira_project_overrides_the_working_directory(tmp_path, monkeypatch):
    from spira.config import NoProjectError, find_project

    project = tmp_path / "elsewhere"
    (project / "conf").mkdir(parents=True)
    (project / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.setenv("SPIRA_PROJECT", str(project))
    assert find_project(tmp_path) == project.resolve()
    monkeypatch.setenv("SPIRA_PROJECT", str(tmp_path))
    with pytest.raises(NoProjectError, match="SPIRA_PROJECT="):
        find_project(tmp_path)
