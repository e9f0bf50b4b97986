"""The registry on git tags, in a small real git + DVC repository (no training)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import git_dvc_repo, run
from spira.pipeline.registry import checked_gate_result
from spira.registry.versions import RegistryError, current_prod, fetch_artifact, prod_assignments, register_and_assign_prod, versions

MODEL = "spira-model"


@pytest.fixture
def registry_repo(tmp_path: Path) -> Path:
    repo = git_dvc_repo(tmp_path / "repo")
    (repo / "dvc.yaml").write_text(f"artifacts:\n  {MODEL}:\n    path: models/best.ckpt\n    type: model\n")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "registry"], repo)
    return repo


def test_versions_records_and_prod_history(registry_repo: Path):
    assert current_prod(registry_repo, MODEL) is None
    first = register_and_assign_prod(registry_repo, MODEL, {"data_version": "abc.dir"}, "promote: one")
    assert (first.version, first.tag, first.record) == ("v1.0.0", f"{MODEL}@v1.0.0", {"data_version": "abc.dir"})
    # The same commit again: its version is reused, not a second version on one commit.
    assert register_and_assign_prod(registry_repo, MODEL, {}, "promote: again").version == "v1.0.0"
    run(["git", "commit", "-q", "--allow-empty", "-m", "drop 2"], registry_repo)
    second = register_and_assign_prod(registry_repo, MODEL, {"data_version": "def.dir"}, "promote: two")
    assert second.version == "v2.0.0" and current_prod(registry_repo, MODEL).version == "v2.0.0"
    assert [v.version for v in versions(registry_repo, MODEL)] == ["v1.0.0", "v2.0.0"]
    assert [(n, v, m) for n, v, _, m in prod_assignments(registry_repo, MODEL)] == [
        (1, "v1.0.0", "promote: one"), (2, "v1.0.0", "promote: again"), (3, "v2.0.0", "promote: two")]  # fmt: skip
    message = run(["git", "tag", "-l", "--format=%(contents)", f"{MODEL}@v2.0.0"], registry_repo).stdout
    assert json.loads(message) == {"data_version": "def.dir"}


def test_a_champion_that_cannot_be_fetched_names_its_tag_and_the_fix(registry_repo: Path, tmp_path: Path):
    version = register_and_assign_prod(registry_repo, MODEL, {}, "promote")
    with pytest.raises(RegistryError) as error:
        fetch_artifact(registry_repo, MODEL, version.tag, tmp_path / "champion.ckpt")
    assert f"the champion {MODEL}@v1.0.0: models/best.ckpt cannot be fetched" in str(error.value)
    assert "dvc fetch --all-tags" in str(error.value)


PARAMS = OmegaConf.create({"gate": {"artifact": MODEL}})


def commit_run(repo: Path, data_version: str = "d1.dir", gate_model: str = "m1.dir", champion: dict | None = None,
               gate_md5: str | None = None) -> None:  # fmt: skip
    """A committed run as `dvc repro` leaves it: dvc.lock and the gate result it records."""
    result = {"decision": "pass", "challenger": {"data_version": data_version}, "champion": champion, "rules": []}
    gate = repo / "metrics/gate.json"
    gate.parent.mkdir(exist_ok=True)
    gate.write_text(json.dumps(result))
    lock = {"stages": {
        "prepare": {"outs": [{"path": "data/prepared", "md5": "d1.dir"}]},
        "train": {"outs": [{"path": "models/checkpoints", "md5": "m1.dir"}]},
        "gate": {"deps": [{"path": "models/checkpoints", "md5": gate_model}],
                 "outs": [{"path": "metrics/gate.json", "md5": gate_md5 or hashlib.md5(gate.read_bytes()).hexdigest()}]},
    }}  # fmt: skip
    (repo / "dvc.lock").write_text(yaml.safe_dump(lock))
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "run"], repo)


def test_a_gate_result_counts_only_for_the_model_data_and_prod_it_judged(registry_repo: Path):
    with pytest.raises(RegistryError, match="no gate result committed at HEAD"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo)
    assert checked_gate_result(registry_repo, PARAMS)["decision"] == "pass"
    (registry_repo / "metrics/gate.json").write_text("{}")
    with pytest.raises(RegistryError, match="metrics/gate.json differs from the committed one"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo, gate_md5="0" * 32)
    with pytest.raises(RegistryError, match="is not the one HEAD's dvc.lock records"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo, gate_model="m0.dir")
    with pytest.raises(RegistryError, match="judged another model"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo, data_version="d0.dir")
    with pytest.raises(RegistryError, match="it ran on data version d0.dir, HEAD has d1.dir"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo)
    register_and_assign_prod(registry_repo, MODEL, {}, "promote")
    with pytest.raises(RegistryError, match=r"prod is v1.0.0 now, the gate judged against no champion; run `dvc repro -f gate`"):
        checked_gate_result(registry_repo, PARAMS)
    commit_run(registry_repo, champion={"version": "v1.0.0"})
    assert checked_gate_result(registry_repo, PARAMS)["champion"] == {"version": "v1.0.0"}
