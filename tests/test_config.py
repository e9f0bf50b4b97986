"""The committed params.yaml is conf/ composed, and every config group composes."""

from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT
from spira.config import compose_config, compose_params


def test_committed_params_yaml_is_conf_composed(tmp_path: Path):
    compose_params(tmp_path / "params.yaml")
    assert (tmp_path / "params.yaml").read_text() == (REPO_ROOT / "params.yaml").read_text(), (
        "params.yaml is stale: run `make params` and commit it"
    )


@pytest.mark.parametrize("group", sorted(p.name for p in (REPO_ROOT / "conf").iterdir() if p.is_dir()))
def test_every_option_of_every_group_composes(group: str):
    for option in sorted((REPO_ROOT / "conf" / group).glob("*.yaml")):
        cfg = compose_config([f"{group}={option.stem}"])
        assert cfg is not None


def test_no_run_dependent_interpolations_in_conf():
    """${hydra:..}, ${now:..} and ${oc.env:..} would bake a time or a path into params.yaml."""
    for path in (REPO_ROOT / "conf").rglob("*.yaml"):
        text = path.read_text()
        for forbidden in ("${hydra:", "${now:", "${oc.env:"):
            assert forbidden not in text, f"{path}: {forbidden}"


def test_stages_declare_only_the_param_groups_they_read():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["prepare"]["params"] == ["data"]
    assert "model" not in stages["featurize"]["params"]
    assert {"model", "train", "trainer"} <= set(stages["train"]["params"])
    assert "data" not in stages["train"]["params"]
