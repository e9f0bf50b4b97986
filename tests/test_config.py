"""The committed params.yaml is conf/ composed, and every config group composes."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO_ROOT
from spira.config import compose_config, compose_params


def test_committed_params_yaml_is_conf_composed(tmp_path: Path):
    compose_params(tmp_path / "params.yaml")
    assert (tmp_path / "params.yaml").read_text() == (REPO_ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run `make params` and commit it"
    )


# conf/hydra holds Hydra's own groups (the launcher): tests/test_experiment_config.py composes them.
@pytest.mark.parametrize("group", sorted(p.name for p in (REPO_ROOT / "conf").iterdir() if p.is_dir() and p.name != "hydra"))
def test_every_option_of_every_group_composes_and_resolves(group: str):
    """Every option composes and every interpolation in it resolves, as writing params.yaml needs."""
    for option in sorted((REPO_ROOT / "conf" / group).glob("*.yaml")):
        cfg = compose_config([f"{group}={option.stem}"])
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)


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
