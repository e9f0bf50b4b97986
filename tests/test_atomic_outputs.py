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
from spira.config import compose_params
from spira.safety import atomic_file, staged_folder, write_text_atomic


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "test.json"
    write_text_atomic(target, '{"auroc": 0.9}\n')
    with pytest.raises(OSError):
        with atomic_file(target) as temporary:
            temporary.write_text('{"auro')
            raise OSError(28, "No space left on device")
    assert target.read_text() == '{"auroc": 0.9}\n'
    assert [path.name for path in tmp_path.iterdir()] == ["test.json"]


def test_a_failed_folder_build_keeps_the_old_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with staged_folder("features", "the features", {}) as staging:
        (staging / "train.npy").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with staged_folder("features", "the features", {}) as staging:
            (staging / "train.npy").write_bytes(b"half")
            raise RuntimeError("killed")
    assert (tmp_path / "features" / "train.npy").read_bytes() == b"old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["features"]


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
