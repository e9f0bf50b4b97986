"""`spira verify` (`make verify`): rerun the committed pipeline from scratch and compare its metrics.

The committed state (HEAD) is cloned into a scratch folder, every stage is run
again there (`dvc repro --force --no-run-cache`: nothing restored from a cache),
and every metric DVC tracks is compared with the committed one. On the machine
that trained the committed model (reports/machine.json) every value must be
identical; elsewhere numbers may differ by `tolerance`. Provenance (the commit a
run ran at, the checkpoint's hash) is not a metric and is not compared.
The scratch clone shares the repository's DVC cache, for data that is tracked
with `dvc add` and for the registry's prod model that the gate compares with;
logging stays offline whatever the committed logger says.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from spira.errors import UserError
from spira.reproducibility import Difference, compare_metrics, flatten, is_number, is_provenance, machine_record

MACHINE_RECORD = Path("reports/machine.json")


class VerifyError(UserError, RuntimeError):
    """A step of the rerun failed; the message says which and how."""


@dataclass(frozen=True)
class MetricsFile:
    path: str
    metrics: int  # values compared
    differences: list[Difference]  # beyond the tolerance
    largest_gap: float  # between numbers, 0 when all are equal


@dataclass(frozen=True)
class Verification:
    commit: str
    committed_machine: dict | None
    this_machine: dict
    tolerance: float  # 0: exact, the committed run's machine
    files: list[MetricsFile] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return self.tolerance == 0

    @property
    def passed(self) -> bool:
        return bool(self.files) and all(not item.differences for item in self.files)


def command(args: list[str], cwd: Path, what: str) -> str:
    """Run a git or dvc command in the scratch clone, logging offline; its failure says what failed."""
    env = os.environ | {"WANDB_MODE": "offline"}
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise VerifyError(f"{what} failed ({' '.join(args)}, exit {result.returncode}):\n{result.stdout}{result.stderr}")
    return result.stdout


def metrics_files(repo: Path) -> list[str]:
    """The metrics files dvc.yaml declares (as `dvc metrics show` resolves them), relative to the repository."""
    shown = json.loads(command(["dvc", "metrics", "show", "--json"], repo, "listing the metrics"))
    return sorted(path for workspace in shown.values() for path in workspace.get("data", {}))


def read_metrics(repo: Path, paths: list[str]) -> dict[str, dict[str, object]]:
    """Each metrics file's values, flat (`flatten`); an empty dict for a file the run did not write."""
    return {path: flatten(json.loads((repo / path).read_text()), path) if (repo / path).is_file() else {} for path in paths}


def compare_file(path: str, committed: dict[str, object], rerun: dict[str, object], tolerance: float) -> MetricsFile:
    differences = compare_metrics(committed, rerun, tolerance)
    compared = {key for key in committed.keys() | rerun.keys() if not is_provenance(key)}
    gaps = [abs(float(rerun[key]) - float(committed[key])) for key in compared & committed.keys() & rerun.keys()
            if is_number(committed[key]) and is_number(rerun[key])]  # fmt: skip
    return MetricsFile(path, len(compared), differences, max((gap for gap in gaps if not math.isnan(gap)), default=0.0))


def verify(repo: Path, tolerance: float, workdir: Path | None = None, keep: bool = False, log: Callable[[str], None] = print) -> Verification:
    """Clone HEAD of `repo` into a scratch folder, rerun every stage, compare the metrics with HEAD's."""
    repo = repo.resolve()
    commit = command(["git", "rev-parse", "--short", "HEAD"], repo, "reading HEAD").strip()
    if command(["git", "status", "--porcelain", "--untracked-files=no"], repo, "reading the working tree").strip():
        log(f"note: verifying the commit {commit}; uncommitted changes to tracked files are not part of it")
    cache = command(["dvc", "cache", "dir"], repo, "finding the DVC cache").strip()
    scratch_parent = Path(tempfile.mkdtemp(prefix="spira-verify-", dir=workdir))
    scratch = scratch_parent / "repo"
    try:
        command(["git", "clone", "--quiet", str(repo), str(scratch)], repo, "cloning HEAD")
        command(["dvc", "config", "--local", "cache.dir", cache], scratch, "sharing the DVC cache")
        command(["dvc", "checkout", "--quiet", "--allow-missing"], scratch, "checking out DVC-tracked inputs")
        paths = metrics_files(scratch)
        if not paths:
            raise VerifyError(f"commit {commit} holds no metrics to compare: run `dvc repro` and commit dvc.lock and metrics/ first")
        committed = read_metrics(scratch, paths)
        committed_machine = json.loads((scratch / MACHINE_RECORD).read_text()) if (scratch / MACHINE_RECORD).is_file() else None
        log(f"rerunning every stage of {commit} from scratch in {scratch} (dvc repro --force --no-run-cache)")
        command(["dvc", "repro", "--force", "--no-run-cache"], scratch, "the rerun")
        this_machine = json.loads((scratch / MACHINE_RECORD).read_text()) if (scratch / MACHINE_RECORD).is_file() else machine_record()
        applied = 0.0 if committed_machine == this_machine else tolerance
        rerun = read_metrics(scratch, paths)
        files = [compare_file(path, committed[path], rerun[path], applied) for path in paths]
        return Verification(commit, committed_machine, this_machine, applied, files)
    finally:
        if keep:
            log(f"scratch clone kept: {scratch}")
        else:
            shutil.rmtree(scratch_parent, ignore_errors=True)
