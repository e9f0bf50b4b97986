"""Resume: a train stage killed (SIGKILL, at an epoch boundary or mid-epoch) or interrupted (Ctrl-C)
resumes from its last checkpoint to the metrics and weights of an uninterrupted run, byte for byte; a
checkpoint of other params, data or code, or an unreadable one, starts fresh and says why."""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from conftest import make_pipeline_repo, run
from spira.config import compose_config, compose_params
from spira.layout import Layout
from spira.training.resume import RESUME_RECORD, run_fingerprint
from spira.pipeline.training_run import find_resume_point

METRICS = ("train.json", "test.json")


def training_process(repo: Path) -> int | None:
    """The pid of the python process running spira.stages.train in `repo` (by its working folder:
    other pipelines may train on the same machine)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if b"spira.stages.train" in arguments and Path(os.readlink(entry / "cwd")).resolve() == repo.resolve():
                return int(entry.name)
        except OSError:  # the process ended meanwhile
            continue
    return None


def wandb_run_ids(repo: Path) -> set[str]:
    """The ids of the offline W&B runs under the repository (folders offline-run-<date>_<time>-<id>)."""
    return {path.name.rsplit("-", 1)[-1] for path in (repo / "wandb").glob("offline-run-*")}


def stop_training_after_an_epoch(repo: Path, stop: signal.Signals) -> subprocess.CompletedProcess:
    """`dvc repro -f -s train`, sent `stop` once the first epoch's last.ckpt is saved (complete: a zip
    archive is readable once its end record, written last, is there)."""
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "WANDB_MODE": "offline"}
    command = ["dvc", "repro", "-f", "-s", "train"]
    # As from a terminal, SIGINT handled: an ignored signal stays ignored in child processes (and
    # Python then installs no KeyboardInterrupt handler), and a test process may have ignored it
    # (Lightning ignores SIGINT once it has handled one, pytest-xdist workers may inherit that).
    stage = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    last = repo / "models" / "resume" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not zipfile.is_zipfile(last) or (pid := training_process(repo)) is None:
        assert stage.poll() is None, f"train ended before it could be stopped: {stage.communicate()}"
        assert time.monotonic() < deadline, "no epoch checkpoint within 300 s"
        time.sleep(0.01)
    # Like a user pressing Ctrl-C again when the first press seems lost: repeated until the stage ends
    # (retrying communicate after its timeout loses no output).
    while True:
        try:
            os.kill(pid, stop)
        except ProcessLookupError:
            pass
        try:
            stdout, stderr = stage.communicate(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            continue
    return subprocess.CompletedProcess(command, stage.returncode, stdout, stderr)


# Kills the train stage it is loaded into (sitecustomize, first on PYTHONPATH) with SIGKILL right
# after optimiser step KILL_AFTER_STEP: a kill mid-epoch, at a batch chosen in advance.
KILL_HOOK = """
import os, sys
if "spira.stages.train" in sys.orig_argv:
    import signal
    from torch.optim.optimizer import register_optimizer_step_post_hook

    steps = [0]

    def kill_after(optimizer, args, kwargs):
        steps[0] += 1
        if steps[0] == int(os.environ["KILL_AFTER_STEP"]):
            os.kill(os.getpid(), signal.SIGKILL)

    register_optimizer_step_post_hook(kill_after)
"""


def kill_training_mid_epoch(repo: Path, step: int, hook_dir: Path) -> subprocess.CompletedProcess:
    """`dvc repro -f -s train`, its training process SIGKILLed right after optimiser step `step`."""
    hook_dir.mkdir(exist_ok=True)
    (hook_dir / "sitecustomize.py").write_text(KILL_HOOK)
    python_path = os.pathsep.join(filter(None, [str(hook_dir), os.environ.get("PYTHONPATH")]))
    return run(["dvc", "repro", "-f", "-s", "train"], repo, check=False, env={"PYTHONPATH": python_path, "KILL_AFTER_STEP": str(step)})


def checkpoint_weights(repo: Path) -> dict[str, dict[str, bytes]]:
    """The published checkpoints' weights, tensor by tensor, as bytes (the files themselves differ
    from save to save: torch writes a random serialization id)."""
    weights = {}
    for path in sorted((repo / "models" / "checkpoints").glob("*.ckpt")):
        state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
        weights[path.name] = {name: tensor.numpy().tobytes() for name, tensor in state.items()}
    return weights


@pytest.mark.slow
def test_a_killed_or_interrupted_train_resumes_to_the_metrics_of_an_uninterrupted_run(tmp_path):
    repo = make_pipeline_repo(tmp_path / "repo")
    # The default's augmentation (ward noise, batched on the training device, at its probability),
    # loader workers and validation sets, on a cohort large enough that the model learns after the kill
    # (the best checkpoint comes from epochs the resumed run trains). Four epochs: a stop after the first
    # leaves three to resume. W&B (offline): the resumed run keeps its id.
    # The spira_confound cohort (strong markers), 40 speakers x 3 recordings of 6-8 s: enough that the
    # validation loss is lowest after the first epoch (epoch 1 of 0-3 on this seed).
    cohort = ["demo_cohort=spira_confound", "demo_cohort.n_speakers=40", "demo_cohort.utterances_per_speaker=3",
              "demo_cohort.min_seconds=6.0", "demo_cohort.max_seconds=8.0"]  # fmt: skip
    compose_params(repo / "params.yaml", [*cohort, "trainer.max_epochs=4", "logger=[csv,wandb]"], config_dir=repo / "conf")
    params, default = OmegaConf.load(repo / "params.yaml"), compose_config()
    for key in ("augment", "train.num_workers", "train.validation_sets", "callbacks", "model", "trainer.deterministic"):
        assert OmegaConf.select(params, key) == OmegaConf.select(default, key), key
    uninterrupted = run(["dvc", "repro", "evaluate"], repo)
    assert "starting fresh: no interrupted run to resume" in uninterrupted.stderr
    expected = {name: (repo / "metrics" / name).read_bytes() for name in METRICS}
    expected_weights = checkpoint_weights(repo)
    # Not a blind comparison: the best checkpoint, whose figures train.json holds, is one the resumed runs train.
    assert json.loads(expected["train.json"])["best_epoch"] >= 1
    # A finished run leaves no resume state: the next one starts fresh.
    assert not (repo / "models" / "resume").exists()
    assert sorted(expected_weights) == ["best.ckpt", "last.ckpt"]
    train_windows = len((repo / "data" / "features" / "train_index.csv").read_text().splitlines()) - 1
    steps_per_epoch = math.ceil(train_windows / int(params.train.batch_size))
    assert steps_per_epoch >= 3, "too few batches for a kill inside an epoch"

    # kill -9 right after epoch 1's checkpoint, kill -9 in the middle of epoch 2, and Ctrl-C: each time the
    # next run resumes after epoch 1. `-f`: DVC would otherwise restore the uninterrupted run's checkpoints
    # from its cache (same deps and params) instead of training.
    # After Ctrl-C, train's metrics alone (the best checkpoint's validation figures) tell the weights apart.
    stops = (("SIGKILL at the epoch boundary", METRICS), ("SIGKILL mid-epoch", METRICS), ("SIGINT", METRICS[:1]))
    for stop, metrics in stops:
        for name in metrics:
            (repo / "metrics" / name).unlink()
        runs_before = wandb_run_ids(repo)
        if stop == "SIGKILL mid-epoch":
            stopped = kill_training_mid_epoch(repo, steps_per_epoch + steps_per_epoch // 2, tmp_path / "kill_hook")
            killed = stopped.stdout + stopped.stderr
            assert stopped.returncode != 0 and "epoch 1/4" in killed and "epoch 2/4" not in killed, killed
        else:
            stopped = stop_training_after_an_epoch(repo, signal.SIGINT if stop == "SIGINT" else signal.SIGKILL)
            assert stopped.returncode != 0, f"{stop} did not stop train:\n{stopped.stderr}"
        if stop == "SIGINT":
            assert "training interrupted (Ctrl-C); the next run resumes from the last finished epoch in models/resume" in stopped.stderr
        assert (repo / "models" / "resume" / "last.ckpt").is_file() and not (repo / "models" / "checkpoints").exists()
        stopped_run_ids = wandb_run_ids(repo) - runs_before

        resumed = run(["dvc", "repro", "-f", "-s", "train"], repo)
        output = resumed.stdout + resumed.stderr
        assert "resuming the interrupted run after epoch 1 " in output, output
        # Only the epochs left are trained again (one line per trained epoch).
        assert "epoch 2/4" in output and "epoch 4/4" in output and "epoch 1/4" not in output
        if "test.json" in metrics:
            run(["dvc", "repro", "evaluate"], repo)  # its metrics are missing: evaluate runs
        assert {name: (repo / "metrics" / name).read_bytes() for name in metrics} == {name: expected[name] for name in metrics}, stop
        assert checkpoint_weights(repo) == expected_weights, stop
        assert not (repo / "models" / "resume").exists()
        # W&B: the resumed training run continues the stopped one under its id (a second offline folder of that id).
        assert len(stopped_run_ids) == 1
        assert len(list((repo / "wandb").glob(f"offline-run-*-{stopped_run_ids.pop()}"))) == 2


def resume_config(tmp_path: Path) -> tuple[DictConfig, Layout]:
    """The default config, with its data, features and resume folders under tmp_path."""
    layout = Layout(prepared=tmp_path / "prepared", features=tmp_path / "features", resume=tmp_path / "resume", checkpoints=tmp_path / "checkpoints")
    for folder in (layout.prepared, layout.features, layout.resume):
        folder.mkdir()
    (layout.prepared / "manifest.csv").write_text("file_id,path\n")
    (layout.features / "train.npy").write_bytes(b"windows")
    return compose_config(), layout


def fingerprint(cfg: DictConfig, layout: Layout) -> dict[str, str]:
    return run_fingerprint(OmegaConf.to_container(cfg, resolve=True), [layout.prepared, layout.features])


def save_last_checkpoint(layout: Layout, fingerprint: dict[str, str]) -> Path:
    path = layout.resume / "last.ckpt"
    record = {"fingerprint": fingerprint, "wandb_run_id": "a1b2c3d4", "should_stop": False}
    torch.save({"state_dict": {}, "hyper_parameters": {}, "epoch": 0, RESUME_RECORD: record}, path)
    return path


def test_a_last_checkpoint_of_the_same_run_is_resumed_with_its_wandb_id(tmp_path):
    cfg, layout = resume_config(tmp_path)
    last = save_last_checkpoint(layout, fingerprint(cfg, layout))
    point = find_resume_point(cfg, layout, fingerprint(cfg, layout))
    assert (point.checkpoint, point.epochs_done, point.wandb_run_id, point.stopped) == (last, 1, "a1b2c3d4", False)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda cfg, layout: OmegaConf.update(cfg, "train.warmup_steps", 7), "belongs to a run with other params"),
        (lambda cfg, layout: (layout.features / "train.npy").write_bytes(b"other windows"), "belongs to a run with other data"),
        (lambda cfg, layout: (layout.resume / "last.ckpt").write_bytes(b"PK\x03\x04 truncated"), "cannot be resumed: it is unreadable or untrusted (RuntimeError)"),
    ],
    ids=["params", "data", "corrupt"],
)
def test_another_run_or_an_unreadable_checkpoint_starts_fresh_and_says_why(tmp_path, caplog, change, reason):
    cfg, layout = resume_config(tmp_path)
    save_last_checkpoint(layout, fingerprint(cfg, layout))
    change(cfg, layout)
    with caplog.at_level(logging.INFO, logger="spira.pipeline.training_run"):
        point = find_resume_point(cfg, layout, fingerprint(cfg, layout))
    assert point.checkpoint is None
    assert [record.getMessage() for record in caplog.records] == [f"starting fresh: {layout.resume / 'last.ckpt'} {reason}"]
    # Fresh: the resume folder is emptied, so no stale checkpoint is versioned or resumed later.
    assert list(layout.resume.iterdir()) == []
