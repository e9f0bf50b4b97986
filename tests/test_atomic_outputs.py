"""Atomic outputs: a file or output folder appears complete or not at all, even when the stage is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import make_pipeline_repo
import spira.safety
from spira.config import compose_params
from spira.safety import atomic_file, recover_folder, staged_folder, write_text_atomic


def dead_pid() -> int:
    """The PID of a process that has ended."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def folder_with(path: Path, content: bytes, name: str = "model.json") -> Path:
    path.mkdir(parents=True)
    (path / name).write_bytes(content)
    return path


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "test.json"
    write_text_atomic(target, '{"auroc": 0.9}\n')
    with pytest.raises(OSError):
        with atomic_file(target) as temporary:
            temporary.write_text('{"auro')
            raise OSError(28, "No space left on device")
    assert target.read_text() == '{"auroc": 0.9}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["test.json"]


@pytest.mark.parametrize("old_left", ["in-place", "by-a-swap-killed-between-its-renames"])
def test_a_failed_folder_build_keeps_the_old_folder(tmp_path, monkeypatch, old_left):
    monkeypatch.chdir(tmp_path)
    if old_left == "in-place":
        with staged_folder("features", "the features", {}) as staging:
            (staging / "train.npy").write_bytes(b"old")
    else:  # the next run starts by putting it back (recover_folder)
        folder_with(tmp_path / f".features.previous-{dead_pid()}", b"old", "train.npy")
    with pytest.raises(RuntimeError):
        with staged_folder("features", "the features", {}) as staging:
            (staging / "train.npy").write_bytes(b"half")
            raise RuntimeError("killed")
    assert (tmp_path / "features" / "train.npy").read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features"]


@pytest.mark.parametrize("pid", ["dead", "own"], ids=["killed-run", "killed-run-with-this-pid"])
def test_a_swap_killed_between_its_renames_gets_the_old_folder_back(tmp_path, pid):
    """Killed after `export -> .export.previous-PID`, before `staging -> export`: the only
    complete copy is the previous one; the next run restores it and does not delete it
    (a killed run in an earlier container may have had this process's PID)."""
    pid = dead_pid() if pid == "dead" else os.getpid()
    previous = folder_with(tmp_path / f".export.previous-{pid}", b"old")
    folder_with(tmp_path / f".export.partial-{pid}", b"new, maybe half")
    recover_folder(tmp_path / "export")
    assert (tmp_path / "export" / "model.json").read_bytes() == b"old"
    assert not previous.exists() and sorted(path.name for path in tmp_path.iterdir()) == ["export"]


def test_leftovers_beside_a_complete_folder_are_removed_and_a_running_builder_is_left_alone(tmp_path):
    folder_with(tmp_path / "export", b"new")
    for name in (f".export.previous-{dead_pid()}", f".export.partial-{dead_pid()}", ".export.partial-1"):
        folder_with(tmp_path / name, b"stale")
    recover_folder(tmp_path / "export")
    # PID 1 is alive: its staging folder may still be in the making.
    assert sorted(path.name for path in tmp_path.iterdir()) == [".export.partial-1", "export"]
    assert (tmp_path / "export" / "model.json").read_bytes() == b"new"


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_a_folder_swap_replaces_the_old_folder_whole(tmp_path, monkeypatch, exchange):
    monkeypatch.chdir(tmp_path)
    if not exchange:
        monkeypatch.setattr(spira.safety, "exchange", lambda first, second: False)
    for content in (b"old", b"new"):
        with staged_folder("export", "export.out_dir", {}) as staging:
            (staging / "model.json").write_bytes(content)
            (staging / content.decode()).write_bytes(b"")
    assert sorted(path.name for path in (tmp_path / "export").iterdir()) == ["model.json", "new"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["export"]


def test_a_killed_writers_temporary_file_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "gate.md"
    (tmp_path / f".gate.md.partial-{dead_pid()}").write_text("# Promotion gate: PA")
    write_text_atomic(target, "# Promotion gate: PASS\n")
    assert [path.name for path in tmp_path.iterdir()] == ["gate.md"]


def recordings(root: Path, count: int) -> None:
    (root / "audio").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for number in range(count):
        sf.write(root / "audio" / f"r{number:03d}.wav", 0.3 * rng.standard_normal(44100 * 2).astype(np.float32), 44100)
        rows.append({"file": f"audio/r{number:03d}.wav", "label": (number // 2) % 2, "speaker_id": f"S{number // 2}"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


@pytest.mark.slow
def test_a_prepare_stage_killed_mid_way_leaves_no_output(tmp_path):
    repo = make_pipeline_repo(tmp_path / "repo")
    recordings(tmp_path / "recordings", 60)
    (tmp_path / "noise").mkdir()
    sf.write(tmp_path / "noise" / "ward.wav", np.zeros(16000, dtype=np.float32) + 0.01, 16000)
    # Seed 24: the hash split of these 30 speakers gives every split both classes.
    overrides = ["data=manifest", f"data.root={tmp_path / 'recordings'}", f"data.noise_root={tmp_path / 'noise'}", "data.num_workers=0", "data.split.seed=24"]
    compose_params(repo / "params.yaml", overrides, config_dir=repo / "conf")
    command = [sys.executable, "-m", "spira.stages.prepare"]
    env = os.environ | {"SPIRA_SALT": "a-secret", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    stage = subprocess.Popen(command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not list((repo / "data").glob(".prepared.partial-*/audio/*.wav")):
        assert stage.poll() is None, f"prepare ended before it could be killed: {stage.stderr.read().decode()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    stage.send_signal(signal.SIGKILL)
    stage.wait()
    assert not (repo / "data" / "prepared").exists() and not (repo / "data" / "quarantine").exists()

    finished = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert len(pd.read_csv(repo / "data" / "prepared" / "manifest.csv")) == 60
    assert sorted(path.name for path in (repo / "data").iterdir()) == ["prepared", "quarantine"]
