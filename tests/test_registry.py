"""The registry on git tags, in a small real git + DVC repository (no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run
from spira.registry.versions import RegistryError, current_prod, fetch_artifact, prod_assignments, register_and_assign_prod, versions

MODEL = "spira-model"


@pytest.fixture
def registry_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.name", "ct"], repo)
    run(["git", "config", "user.email", "ct@example.org"], repo)
    run(["dvc", "init", "-q"], repo)
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
