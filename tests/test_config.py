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
