"""SIGKILL the export, gate and evaluate writers at random points: every output is then the old
version (a previous complete run's) or the new one (the killed run's, complete), never partial.
An output folder may be missing only between the two renames of a swap (where the file system
cannot exchange two names in one step), with the old one kept whole beside it; the next run
puts it back. The next run, and the next `dvc repro`, end with the new version everywhere.

The writers run in forked children of this process, so Python, torch and the project are
imported once: a child runs one writer with the new params and is killed either by a timer
(a random delay within the window in which a complete run writes, measured first) or just
before its k-th write (a random k among the writes a complete run makes, seen through an
audit hook: opens for writing, renames, mkdir and deletes under the output folders).
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import spira.safety
from conftest import PipelineRun, committed_copy, run
from spira.config import declared_params, load_params, restrict_params
from spira.pipeline.export import export_model
from spira.pipeline.gate import run_gate
from spira.pipeline.model import evaluate_model
from spira.safety import recover_folder

pytestmark = pytest.mark.slow

# Each writer's outputs as dvc.yaml declares them; folders end with "/".
OUTPUTS = {
    "evaluate": (
        "eval/predictions_test_clean.csv",
        "eval/predictions_test_noisy.csv",
        "eval/threshold.json",
        "eval/report.md",
        "metrics/test.json",
        "metrics/subgroups.json",
        "eval/plots/",
        "eval/figures/",
    ),
    "export": ("models/export/",),
    "gate": ("reports/gate.md", "metrics/gate.json"),
}
# The new run's params: each writer's outputs differ from the smoke run's.
NEW_PARAMS = {
    "evaluate.threshold": 0.5,
    "evaluate.calibration_bins": 5,
    "evaluate.bootstrap.resamples": 300,
    "export.inconclusive_margin": 0.1,
    "gate.floors.test_auroc": 0.5,
}
KILLS_PER_WRITER = 10  # 4 by a timer, 6 just before a write: 30 in all, 18 sure to kill
WRITE_EVENTS = ("open", "os.rename", "os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT


def writer(stage: str) -> Callable[[], object]:
    """The stage's writer on the params in ./params.yaml, as `python -m spira.stages.<stage>` runs it."""
    function = {"evaluate": evaluate_model, "export": export_model, "gate": run_gate}[stage]
    return lambda: function(restrict_params(load_params("params.yaml"), declared_params(stage)))


def output_digest(path: Path) -> str | None:
    """A file's or folder's content (names and bytes of every file) as one hash; None when absent."""
    if not path.exists():
        return None
    digest = hashlib.sha256()
    files = sorted(file for file in path.rglob("*") if file.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path)).encode() + b"\0" + hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def state(repo: Path, stage: str) -> dict[str, str | None]:
    return {name: output_digest(repo / name) for name in OUTPUTS[stage]}


def leftovers(repo: Path, stage: str) -> list[str]:
    """The hidden temporaries beside the stage's outputs (`.name.partial-PID`, `.name.previous-PID`)."""
    found = set()
    for name in OUTPUTS[stage]:
        path = repo / name
        found |= {str(sibling.relative_to(repo)) for sibling in path.parent.glob(f".{path.name}.*-*")}
    return sorted(found)


def is_write(event: str, args: tuple, folders: tuple[str, ...]) -> bool:
    if event not in WRITE_EVENTS:
        return False
    if event == "open":
        path, mode, flags = args
        if isinstance(path, int) or not (any(letter in (mode or "") for letter in "wax+") or (mode is None and flags & WRITE_FLAGS)):
            return False
    else:
        path = args[0]
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    return isinstance(path, str | os.PathLike) and os.path.abspath(path).startswith(folders)


@dataclass
class Child:
    """One forked run of a writer: killed or not, and its write times (seconds from the fork)."""

    killed: bool
    writes: list[float] = field(default_factory=list)


def run_child(
    repo: Path,
    stage: str,
    kill_after: float | None = None,
    kill_when: Callable[[int, str, tuple], bool] | None = None,
    exchange: bool = True,
    log: Path | None = None,
) -> Child:
    """Fork; the child runs the writer. The parent SIGKILLs it `kill_after` seconds after the
    fork, or the child SIGKILLs itself just before the write for which `kill_when(number, event,
    args)` holds. `exchange=False`: folder swaps take two renames (file systems without renameat2)."""
    folders = tuple(str(repo / name.split("/")[0]) + os.sep for name in OUTPUTS[stage])
    times = repo.parent / f"writes-{stage}.txt"
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: it never returns into pytest
        status = 1
        try:
            descriptor = os.open(log or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            os.dup2(descriptor, 1), os.dup2(descriptor, 2)
            torch.set_num_threads(1)  # the parent's thread pool is not the child's
            if not exchange:
                spira.safety.exchange = lambda first, second: False
            os.chdir(repo)
            writes: list[float] = []

            def hook(event: str, args: tuple) -> None:
                if is_write(event, args, folders):
                    writes.append(time.monotonic() - started)
                    if kill_when is not None and kill_when(len(writes), event, args):
                        os.kill(os.getpid(), signal.SIGKILL)

            sys.addaudithook(hook)
            writer(stage)()
            sys.stdout.flush()
            times.write_text("\n".join(map(str, writes)))
            status = 0
        except BaseException:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(status)
    if kill_after is not None:
        time.sleep(max(0.0, kill_after - (time.monotonic() - started)))
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return Child(True)
    assert os.WEXITSTATUS(status) == 0, f"{stage} failed:\n{log.read_text() if log else ''}"
    return Child(False, [float(line) for line in times.read_text().split()])


def save(repo: Path, stage: str, folder: Path) -> None:
    for name in OUTPUTS[stage]:
        source, target = repo / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(source, target) if source.is_dir() else shutil.copy2(source, target)


def restore(repo: Path, stage: str, folder: Path) -> None:
    """The stage's outputs back to the copies in `folder`; a killed run's temporaries stay."""
    for name in OUTPUTS[stage]:
        target = repo / name
        if target.is_dir():
            shutil.rmtree(target)
        target.unlink(missing_ok=True)
    save(folder, stage, repo)


def check_killed(repo: Path, stage: str, old: dict, new: dict) -> str:
    """Assert each output is the old or the new version; a folder may be missing only while the
    old one waits whole as `.name.previous-PID`. Then recover the folders as the next run does
    first (recover_folder) and assert again. Returns where the kill landed: before (nothing
    written yet), mid-write, swap-window (between a swap's two renames) or after."""
    now, stray = state(repo, stage), leftovers(repo, stage)
    window = False
    for name, digest in now.items():
        if digest is None and name.endswith("/"):
            path = repo / name
            kept = [output_digest(sibling) for sibling in path.parent.glob(f".{path.name}.previous-*")]
            assert kept == [old[name]], f"{name}: missing after the kill, its previous version not kept whole ({stray})"
            window = True
        else:
            assert digest in (old[name], new[name]), f"{name}: neither the old nor the new version after the kill ({stray})"
    folders = [repo / name for name in OUTPUTS[stage] if name.endswith("/")]
    for folder in folders:
        recover_folder(folder)
    recovered = state(repo, stage)
    assert all(recovered[name] in (old[name], new[name]) for name in recovered), recovered
    assert not [name for folder in folders for name in folder.parent.glob(f".{folder.name}.*-*")], "recover_folder left a sibling"
    if window:
        return "swap-window"
    if not stray and now == old:
        return "before"
    if not stray and now == new:
        return "after"
    return "mid-write"


def test_killed_writers_leave_the_old_or_the_new_outputs_and_the_next_run_recovers(smoke_pipeline: PipelineRun, tmp_path: Path):
    repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    params = OmegaConf.load(repo / "params.yaml")
    for key, value in NEW_PARAMS.items():
        OmegaConf.update(params, key, value)
    OmegaConf.save(params, repo / "params.yaml")
    saved = tmp_path / "old"
    for stage in OUTPUTS:
        save(repo, stage, saved)
    rng = random.Random(19)
    old, new, landed = {}, {}, {}
    started = time.monotonic()
    # In pipeline order: export and gate read the new metrics/test.json, as in `dvc repro`.
    for stage in OUTPUTS:
        log = tmp_path / f"{stage}.log"
        old[stage] = state(repo, stage)
        complete = run_child(repo, stage, log=log)
        new[stage] = state(repo, stage)
        assert all(new[stage].values()) and leftovers(repo, stage) == []
        unchanged = [name for name in new[stage] if new[stage][name] == old[stage][name]]
        assert unchanged in ([], ["metrics/subgroups.json"]), "the new params must change the outputs"
        first, last = complete.writes[0], complete.writes[-1]
        landed[stage] = []
        for attempt in range(KILLS_PER_WRITER):
            restore(repo, stage, saved)
            # About half the swaps in two renames, as where the file system cannot exchange two names.
            exchange = rng.random() < 0.5
            if attempt % 5 in (0, 2):  # a timer: anywhere in the write window or a little before it
                margin = 0.1 * (last - first) + 0.01
                child = run_child(repo, stage, kill_after=rng.uniform(max(0.0, first - margin), last), exchange=exchange, log=log)
            else:  # just before a random one of the writes a complete run makes
                number = rng.randint(1, len(complete.writes))
                child = run_child(repo, stage, kill_when=lambda count, event, args, number=number: count == number, exchange=exchange, log=log)
            landed[stage].append(check_killed(repo, stage, old[stage], new[stage]) if child.killed else "finished")
        # The next run: the new version everywhere, no temporaries left.
        run_child(repo, stage, log=log)
        assert state(repo, stage) == new[stage]
        assert leftovers(repo, stage) == []
    print(f"where the kills landed ({time.monotonic() - started:.1f} s):", landed)
    kinds = [kind for stage in OUTPUTS for kind in landed[stage]]
    assert sum(kind != "finished" for kind in kinds) >= 20
    assert kinds.count("mid-write") >= 15

    # From the old outputs, evaluate killed between the two renames of the figures swap leaves
    # no eval/figures and the old one aside; the next `dvc repro` ends with the new version.
    for stage in OUTPUTS:
        restore(repo, stage, saved)
    figures = str(repo / "eval" / "figures")
    swap = lambda count, event, args: event == "os.rename" and os.path.abspath(args[1]) == figures  # noqa: E731
    child = run_child(repo, "evaluate", kill_when=swap, exchange=False)
    assert child.killed and not (repo / "eval" / "figures").exists()
    assert [output_digest(kept) for kept in (repo / "eval").glob(".figures.previous-*")] == [old["evaluate"]["eval/figures/"]]
    result = run(["dvc", "repro"], repo, env={"OMP_NUM_THREADS": "1"})
    assert all(f"Running stage '{stage}'" in result.stdout for stage in OUTPUTS), result.stdout
    for stage in OUTPUTS:
        assert state(repo, stage) == new[stage], stage
        assert leftovers(repo, stage) == [], stage
