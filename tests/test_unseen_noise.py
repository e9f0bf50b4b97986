"""The ward-noise set split by recording (train / val / test noise), and a cohort without any noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import run
from spira.augment.pipeline import load_noise_clips
from spira.data.manifest import NOISE_MANIFEST_COLUMNS, write_noise_manifest
from spira.data.splits import SHARED_NOISE, split_noise_recordings

FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
IDS = [f"{number:016x}" for number in range(1000, 1012)]


def test_noise_split_is_disjoint_complete_and_stable():
    splits = split_noise_recordings(IDS, FRACTIONS, seed=0)
    assert [splits.count(name) for name in ("train", "val", "test")] == [7, 3, 2]
    # One split per recording, whatever order the recordings are listed in.
    reversed_splits = split_noise_recordings(IDS[::-1], FRACTIONS, seed=0)
    assert dict(zip(IDS, splits)) == dict(zip(IDS[::-1], reversed_splits))
    assert split_noise_recordings(IDS, FRACTIONS, seed=0) == splits
    assert split_noise_recordings(IDS, FRACTIONS, seed=1) != splits
    # Three recordings: one each, even where the fractions would round a split to zero.
    assert sorted(split_noise_recordings(IDS[:3], {"train": 0.9, "val": 0.05, "test": 0.05}, seed=0)) == ["test", "train", "val"]


def test_too_few_recordings_are_shared_and_none_is_nothing():
    assert split_noise_recordings(IDS[:2], FRACTIONS, seed=0) == [SHARED_NOISE, SHARED_NOISE]
    assert split_noise_recordings([], FRACTIONS, seed=0) == []


def test_each_part_of_the_pipeline_loads_only_its_own_noise(tmp_path: Path):
    (tmp_path / "noise").mkdir()
    rows = []
    for number, split in enumerate(["train", "val", "test", "train"]):
        sf.write(tmp_path / "noise" / f"{number}.wav", np.full(160, number / 10, dtype=np.float32), 16000)
        rows.append({"noise_id": str(number), "path": f"noise/{number}.wav", "n_samples": 160, "split": split})
    write_noise_manifest(tmp_path, pd.DataFrame(rows, columns=NOISE_MANIFEST_COLUMNS))
    levels = {split: sorted(round(float(clip[0]), 1) for clip in load_noise_clips(tmp_path, split)) for split in ("train", "val", "test")}
    assert levels == {"train": [0.0, 0.3], "val": [0.1], "test": [0.2]}


@pytest.mark.slow
def test_a_cohort_without_noise_runs_with_augment_none_and_fails_clearly_without(tiny_repo: Path):
    no_noise = ("-S", "demo_cohort.n_noise_files=0")
    failed = run(["dvc", "exp", "run", *no_noise], tiny_repo, check=False)
    assert failed.returncode != 0
    output = failed.stdout + failed.stderr
    assert "pass data.noise_root=<folder of ward-noise recordings>, or augment=none" in output
    assert "Traceback" not in output

    run(["dvc", "exp", "run", *no_noise, "-S", "augment=none", "-S", "trainer.max_epochs=1"], tiny_repo)
    metrics = json.loads((tiny_repo / "metrics/test.json").read_text())
    assert metrics["test_noisy"] == {"n_files": 0, "status": "not evaluated: the cohort has no test noise recordings (data.noise_root)"}
    assert metrics["test_clean"]["n_files"] > 0 and "accuracy_ci_low" in metrics["test_clean"]
    assert metrics["threshold"]["validation_sets"] == ["val"]
    assert not (tiny_repo / "data/features/test_noisy.npy").exists()
    assert json.loads((tiny_repo / "data/prepared/summary.json").read_text())["noise_files"] == 0
