"""SPIRA's ward-noise protocol and the on-the-fly augmented training stream."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from spira.augment.noise import WardNoiseInserter
from spira.augment.pipeline import build_augmenter, build_batch_noise, load_noise_clips, with_training_noise
from spira.config import compose_config
from spira.features.featurize import featurize
from spira.features.windows import window_spec
from spira.features.store import load_split
from spira.pipeline.augment import augment_settings
from spira.pipeline.features import featurize_settings
from spira.training.data import AugmentedWaveformWindows

MIN_AMP, MAX_AMP = 0.033474047, 0.19233719


def _inserter(num_control=4, num_patient=3, clips=None):
    rng = np.random.default_rng(0)
    clips = clips if clips is not None else [rng.uniform(-1, 1, 8000).astype(np.float32) for _ in range(3)]
    return WardNoiseInserter(clips, num_control, num_patient, MIN_AMP, MAX_AMP)


def test_each_clip_peak_lies_within_spira_bounds():
    inserter = _inserter()
    rng = np.random.default_rng(1)
    peaks = [np.abs(inserter.clip(4000, rng)).max() for _ in range(500)]
    assert MIN_AMP <= min(peaks) and max(peaks) <= MAX_AMP
    # Peaks are drawn uniformly: they span the interval, not one value.
    assert max(peaks) - min(peaks) > 0.8 * (MAX_AMP - MIN_AMP)


def test_clip_count_per_class_control_four_patient_three():
    # Constant +1 noise makes every clip contribute exactly its amplitude draw.
    inserter = WardNoiseInserter([np.ones(100, np.float32)], 4, 3, 0.1, 0.1)
    silent = np.zeros(50, np.float32)
    rng = np.random.default_rng(0)
    assert inserter(silent, 0, rng) == pytest.approx(np.full(50, 0.4))
    assert inserter(silent, 1, rng) == pytest.approx(np.full(50, 0.3))


def test_probability_leaves_that_share_of_signals_as_recorded():
    inserter = WardNoiseInserter([np.ones(100, np.float32)], 4, 3, 0.1, 0.1, probability=0.3)
    rng = np.random.default_rng(0)
    sums = np.array([inserter(np.zeros(50, np.float32), label % 2, rng)[0] for label in range(4000)])
    # Each signal gets all its clips or none: 0.4 (control) or 0.3 (patient), else 0.
    assert set(np.round(sums.astype(np.float64), 6).tolist()) == {0.0, 0.3, 0.4}
    assert abs((sums > 0).mean() - 0.3) < 0.03
    with pytest.raises(ValueError, match="probability"):
        WardNoiseInserter([np.ones(4)], 4, 3, 0.1, 0.2, probability=1.5)


def test_short_noise_recordings_are_looped_and_signal_is_not_modified_in_place():
    inserter = WardNoiseInserter([np.linspace(-1, 1, 10, dtype=np.float32)], 1, 1, 0.1, 0.2)
    signal = np.zeros(95, np.float32)
    noisy = inserter(signal, 0, np.random.default_rng(3))
    assert noisy.shape == (95,) and np.abs(noisy).max() > 0
    assert not signal.any()


def test_insertion_needs_noise_and_sane_bounds():
    with pytest.raises(ValueError, match="noise recording"):
        WardNoiseInserter([], 4, 3, MIN_AMP, MAX_AMP)
    with pytest.raises(ValueError, match="bounds"):
        WardNoiseInserter([np.ones(4)], 4, 3, 0.5, 0.1)


@pytest.fixture
def prepared(tmp_path: Path) -> Path:
    """A prepared-data folder as the prepare stage writes it: 6 files, 2 noise recordings."""
    rng = np.random.default_rng(0)
    (tmp_path / "audio").mkdir()
    (tmp_path / "noise").mkdir()
    rows = []
    for number in range(6):
        file_id = f"{number:016x}"
        samples = (rng.normal(0, 0.3, 16000 * 5)).astype(np.float32)
        sf.write(tmp_path / f"audio/{file_id}.wav", samples, 16000, subtype="FLOAT")
        split = ("train", "train", "val", "val", "test", "test")[number]
        rows.append((file_id, f"audio/{file_id}.wav", number % 2, f"spk{number}", samples.size, split))
    pd.DataFrame(rows, columns=["file_id", "path", "label", "speaker_id", "n_samples", "split"]).to_csv(tmp_path / "manifest.csv", index=False)
    noise_rows = []
    for number in range(2):
        sf.write(tmp_path / f"noise/n{number}.wav", rng.uniform(-1, 1, 16000 * 6).astype(np.float32), 16000, subtype="FLOAT")
        noise_rows.append((f"n{number}", f"noise/n{number}.wav", 16000 * 6))
    pd.DataFrame(noise_rows, columns=["noise_id", "path", "n_samples"]).to_csv(tmp_path / "noise_manifest.csv", index=False)
    return tmp_path


def _stream(cfg, prepared: Path, features: Path, seed: int, epochs: int = 2) -> list[torch.Tensor]:
    spec = window_spec(cfg.features)
    augmenter = build_augmenter(augment_settings(cfg.augment), prepared, spec.sample_rate)
    noise = build_batch_noise(augment_settings(cfg.augment), load_noise_clips(prepared, "train"), spec.window_samples)
    _, index = load_split(features, "train")
    dataset = AugmentedWaveformWindows(index, prepared, spec, augmenter)
    L.seed_everything(seed, workers=True)
    # Unshuffled, so batch k of every epoch holds the same windows; ward noise
    # goes in per batch, as the LightningModule inserts it on the training device.
    loader = DataLoader(dataset, batch_size=4, shuffle=False, num_workers=0)
    return [[noise(batch[0], batch[1]) for batch in loader] for _ in range(epochs)]


def test_augmented_stream_is_reproducible_under_a_seed_and_new_each_epoch(prepared: Path, tmp_path: Path):
    cfg, features = compose_config(), tmp_path / "features"
    featurize(featurize_settings(cfg), prepared, features, {})
    first, again, other = _stream(cfg, prepared, features, 7), _stream(cfg, prepared, features, 7), _stream(cfg, prepared, features, 8)
    flat = [batch for epoch in first for batch in epoch]
    assert all(torch.equal(a, b) for a, b in zip(flat, [batch for epoch in again for batch in epoch]))
    assert not any(torch.equal(a, b) for a, b in zip(flat, [batch for epoch in other for batch in epoch]))
    # The second epoch draws new noise for the same windows.
    epoch_1, epoch_2 = first
    assert not any(torch.equal(a, b) for a, b in zip(epoch_1, epoch_2))


def test_noisy_test_set_adds_one_clip_to_controls_only_and_is_fixed(prepared: Path, tmp_path: Path):
    cfg = compose_config()
    featurize(featurize_settings(cfg), prepared, tmp_path / "features", {})
    clean = np.load(tmp_path / "features/test.npy")
    noisy = np.load(tmp_path / "features/test_noisy.npy")
    index = pd.read_csv(tmp_path / "features/test_noisy_index.csv")
    patients, controls = (index["label"] == 1).to_numpy(), (index["label"] == 0).to_numpy()
    assert np.array_equal(clean[patients], noisy[patients])
    assert not np.allclose(clean[controls], noisy[controls])
    featurize(featurize_settings(cfg), prepared, tmp_path / "again", {})
    assert np.array_equal(np.load(tmp_path / "again/test_noisy.npy"), noisy)


def test_audiomentations_background_noise_draws_train_noise_only(prepared: Path):
    manifest = pd.read_csv(prepared / "noise_manifest.csv")
    for number, split in enumerate(["val", "test", "train"]):
        sf.write(prepared / f"noise/{split}{number}.wav", np.full(16000, 0.5, np.float32), 16000, subtype="FLOAT")
        manifest.loc[len(manifest)] = [f"{split}{number}", f"noise/{split}{number}.wav", 16000]
    manifest.assign(split=["train", "train", "val", "test", "train"]).to_csv(prepared / "noise_manifest.csv", index=False)
    cfg = compose_config(["augment=spira_noise_audiomentations", "augment.ward_noise.probability=1.0"])
    compose = with_training_noise(augment_settings(cfg.augment).audiomentations, prepared)
    assert compose["transforms"][0]["_target_"] == "audiomentations.AddBackgroundNoise"
    assert "sounds_path" not in cfg.augment.audiomentations.transforms[0]
    assert [Path(path) for path in compose["transforms"][0]["sounds_path"]] == [prepared / "noise/n0.wav", prepared / "noise/n1.wav", prepared / "noise/train2.wav"]


def test_audiomentations_background_noise_mixes_in_the_prepared_noise(prepared: Path):
    # Ward noise on every window: on silence, the SNR-relative transforms add nothing.
    cfg = compose_config(["augment=spira_noise_audiomentations", "augment.ward_noise.probability=1.0"])
    augmenter = build_augmenter(augment_settings(cfg.augment), prepared, 16000)
    silent = np.zeros(16000, np.float32)
    np.random.seed(0)
    out = augmenter(silent, 1, np.random.default_rng(0))
    assert out.shape == silent.shape and out.dtype == np.float32 and np.abs(out).max() > 0


def test_augment_none_builds_no_augmenter(prepared: Path):
    assert build_augmenter(augment_settings(compose_config(["augment=none"]).augment), prepared, 16000) is None
