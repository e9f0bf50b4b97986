"""Nothing lost: `dvc exp run -S ...` (in the workspace and through the queue) aimed at a
folder of recordings, tracked by DVC or not, leaves every recording byte for byte and
is refused with a clear line; a run that reads them leaves them as they were.

The reproduction: a user copies recordings next to the demo and points data.root and
the prepared-data folder at them. Before the output paths were fixed, `dvc exp run`
checked out the outputs of the new params first and deleted the 376 recordings."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

from conftest import PipelineRun, committed_copy, run, run_activated
from spira.layout import OWNED_OUTPUTS, PIPELINE
from test_experiments import wait_for_queue

pytestmark = pytest.mark.slow

RECORDINGS = "data/myrec"
# The reproduction, and the same with the other parameters that used to move an output.
AIMED_AT_RECORDINGS = {
    "data.out_dir": ["-S", f"data.root={RECORDINGS}", "-S", f"data.out_dir={RECORDINGS}", "-S", "data.public_dataset=true"],
    "features.out_dir": ["-S", f"features.out_dir={RECORDINGS}"],
    "export.out_dir": ["-S", f"export.out_dir={RECORDINGS}"],
}


def digests(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder`, by relative path."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture
def user_repo(smoke_pipeline: PipelineRun, tmp_path: Path) -> Path:
    """A repository after `make repro`, with a folder of recordings (a copy of the demo's) beside it, not tracked."""
    repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    shutil.copytree(repo / PIPELINE.demo, repo / RECORDINGS)
    return repo


def assert_refused(result, recordings: dict[str, str], repo: Path) -> None:
    assert result.returncode != 0
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith("ERROR: ") and "Could not override" in first, result.stderr
    assert digests(repo / RECORDINGS) == recordings


@pytest.mark.parametrize("tracked", [False, True], ids=["untracked", "dvc-add"])
def test_exp_run_aimed_at_the_recordings_is_refused_and_keeps_every_file(user_repo: Path, tracked: bool):
    if tracked:
        track(user_repo)
    recordings = digests(user_repo / RECORDINGS)
    assert len(recordings) == len(digests(user_repo / PIPELINE.demo)) > 30
    for key, overrides in AIMED_AT_RECORDINGS.items():
        result = run(["dvc", "exp", "run", *overrides], user_repo, check=False)
        assert_refused(result, recordings, user_repo)
        assert f"Could not override '{key}'" in result.stderr
    # A stage run directly on params that name an old output key says so in one line.
    params = (user_repo / "params.yaml").read_text()
    (user_repo / "moved.yaml").write_text(params.replace("data:\n", f"data:\n  out_dir: {RECORDINGS}\n", 1))
    stage = run([sys.executable, "-m", "spira.stages.prepare", "--params", "moved.yaml"], user_repo, check=False)
    assert stage.returncode == 1 and "Traceback" not in stage.stderr
    assert stage.stderr.strip().splitlines()[-1].startswith("error: data.out_dir is no parameter: the pipeline writes data/prepared, a fixed path")
    assert digests(user_repo / RECORDINGS) == recordings


def track(repo: Path) -> None:
    """`dvc add` the recordings and commit: what the queue's copy of the repository needs to read them."""
    run(["dvc", "add", RECORDINGS], repo)
    run(["git", "add", f"{RECORDINGS}.dvc", "data/.gitignore"], repo)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "recordings"], repo)


def test_the_queue_refuses_the_run_aimed_at_the_recordings_and_runs_the_one_that_reads_them(user_repo: Path):
    track(user_repo)
    recordings = digests(user_repo / RECORDINGS)
    reads = f"-S data.root={RECORDINGS} -S data.noise_root={RECORDINGS} -S data.public_dataset=true"
    aimed = f"-S data.root={RECORDINGS} -S data.out_dir={RECORDINGS} -S data.public_dataset=true"
    refused = run(["dvc", "exp", "run", "--queue", *aimed.split()], user_repo, check=False)
    assert_refused(refused, recordings, user_repo)
    # Queued and started from a shell with the virtualenv active (the queue worker starts `dvc` from PATH).
    run_activated(f"dvc exp run --queue {reads}; dvc queue start -j 1", user_repo)
    status = wait_for_queue(user_repo)
    assert status.count("Success") == 1 and "Failed" not in status, status
    assert digests(user_repo / RECORDINGS) == recordings
    assert not any((user_repo / RECORDINGS).is_relative_to(user_repo / output) for output in OWNED_OUTPUTS)
