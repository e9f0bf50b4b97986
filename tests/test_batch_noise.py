"""SPIRA's ward-noise insertion batched on the training device: same protocol, same distributions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from spira.augment.noise import BatchWardNoise, WardNoiseInserter
from spira.augment.pipeline import build_augmenter, build_batch_noise
from spira.config import compose_config
from spira.features.windows import cut_windows, window_spec
from spira.pipeline.augment import augment_settings
from spira.training.data import AugmentedWaveformWindows
from test_augment import prepared  # noqa: F401  (the prepared-data fixture)

MIN_AMP, MAX_AMP = 0.033474047, 0.19233719


def _noise(clips, length, num_control=4, num_patient=3, low=MIN_AMP, high=MAX_AMP) -> BatchWardNoise:
    return BatchWardNoise(WardNoiseInserter(clips, num_control, num_patient, low, high), length)


def test_each_clip_peak_lies_within_spira_bounds_and_spans_them():
    rng = np.random.default_rng(0)
    noise = _noise([rng.uniform(-1, 1, 8000).astype(np.float32) for _ in range(3)], 4000, 1, 1)
    torch.manual_seed(0)
    noisy = noise(torch.zeros(500, 4000), torch.randint(0, 2, (500,)))
    peaks = noisy.abs().amax(dim=1)
    assert MIN_AMP - 1e-6 <= peaks.min().item() and peaks.max().item() <= MAX_AMP + 1e-6
    assert peaks.max().item() - peaks.min().item() > 0.8 * (MAX_AMP - MIN_AMP)


def test_clip_count_per_class_control_four_patient_three():
    # Constant +1 noise makes every clip contribute exactly its amplitude draw.
    noise = _noise([np.ones(100, np.float32)], 50, 4, 3, 0.1, 0.1)
    noisy = noise(torch.zeros(6, 50), torch.tensor([0, 1, 0, 1, 1, 0]))
    expected = torch.tensor([0.4, 0.3, 0.4, 0.3, 0.3, 0.4])[:, None].expand(6, 50)
    torch.testing.assert_close(noisy, expected)


def test_probability_leaves_that_share_of_windows_as_recorded_per_class():
    noise = BatchWardNoise(WardNoiseInserter([np.ones(100, np.float32)], 4, 3, 0.1, 0.1, probability=0.5), 50)
    labels = torch.arange(6000) % 2
    torch.manual_seed(0)
    levels = noise(torch.zeros(6000, 50), labels)[:, 0]
    # A window gets all its clips or none, with the same chance in both classes.
    assert set(torch.round(levels.double(), decimals=6).tolist()) == {0.0, 0.3, 0.4}
    for label, level in ((0, 0.4), (1, 0.3)):
        share = (levels[labels == label] > 0).double().mean().item()
        assert abs(share - 0.5) < 0.03
        assert torch.allclose(levels[(labels == label) & (levels > 0)], torch.tensor(level))


def test_recordings_and_offsets_are_drawn_uniformly_as_the_numpy_inserter_does():
    length, ramp_length = 100, 1100
    # Recording 0 a rising ramp 1..n, recording 1 its negative: the sign tells the
    # recording, the first sample (scaled to peak 1) the offset: (o + 1) / (o + length).
    ramp = np.arange(1, ramp_length + 1, dtype=np.float32)
    noise = _noise([ramp, -ramp], length, 1, 1, 1.0, 1.0)
    torch.manual_seed(1)
    noisy = noise(torch.zeros(4000, length), torch.zeros(4000, dtype=torch.int64))
    first = noisy[:, 0].double()
    assert abs((first > 0).double().mean().item() - 0.5) < 0.04
    offsets = ((first.abs() * length - 1) / (1 - first.abs())).round()
    assert offsets.min().item() >= 0 and offsets.max().item() <= ramp_length - length
    # Uniform over 0..n - length: mean (n - length) / 2, both ends reached.
    assert abs(offsets.mean().item() - (ramp_length - length) / 2) < 25
    assert offsets.min().item() < 10 and offsets.max().item() > ramp_length - length - 10


def test_no_clips_to_insert_leaves_the_windows_as_they_are():
    noise = BatchWardNoise(WardNoiseInserter([], 0, 0, MIN_AMP, MAX_AMP), 50)
    windows = torch.linspace(-1, 1, 100).reshape(2, 50)
    assert torch.equal(noise(windows, torch.tensor([0, 1])), windows)


def test_short_recordings_are_looped_and_windows_are_not_modified_in_place():
    noise = _noise([np.linspace(-1, 1, 10, dtype=np.float32)], 95, 1, 1, 0.1, 0.2)
    windows = torch.zeros(3, 95)
    noisy = noise(windows, torch.tensor([0, 1, 0]))
    assert noisy.shape == (3, 95) and (noisy.abs().amax(dim=1) > 0).all()
    assert not windows.any()


def test_same_seed_same_noise_other_seed_other_noise():
    rng = np.random.default_rng(0)
    noise = _noise([rng.uniform(-1, 1, 9000).astype(np.float32) for _ in range(2)], 2000)
    windows, labels = torch.zeros(8, 2000), torch.tensor([0, 1] * 4)
    draws = []
    for seed in (5, 5, 6):
        torch.manual_seed(seed)
        draws.append(noise(windows, labels))
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


def test_ward_noise_alone_runs_per_batch_with_audiomentations_per_window(prepared: Path):
    clips = [np.ones(16000, np.float32)]
    assert build_augmenter(augment_settings(compose_config().augment), prepared, 16000) is None
    assert isinstance(build_batch_noise(augment_settings(compose_config().augment), clips, 64000), BatchWardNoise)
    both = augment_settings(compose_config(["augment=spira_noise_audiomentations"]).augment)
    assert build_batch_noise(both, clips, 64000) is None and build_augmenter(both, prepared, 16000) is not None
    assert build_batch_noise(augment_settings(compose_config(["augment=none"]).augment), clips, 64000) is None


def test_audio_windows_are_the_featurized_windows_sliced_from_memory(prepared: Path):
    spec = window_spec(compose_config().features)
    manifest = pd.read_csv(prepared / "manifest.csv", dtype={"file_id": str})
    train = manifest[manifest["split"] == "train"]
    rows = [(file.file_id, number, float(number), 0.0, file.label, file.speaker_id)
            for file in train.itertuples() for number in range(spec.count(file.n_samples))]
    index = pd.DataFrame(rows, columns=["file_id", "window", "start_seconds", "padded_seconds", "label", "speaker_id"])
    dataset = AugmentedWaveformWindows(index, prepared, spec)
    expected = np.concatenate([cut_windows(sf.read(prepared / path, dtype="float32")[0], spec)[0] for path in train["path"]])
    assert len(dataset) == expected.shape[0] == 4
    for row in range(len(dataset)):
        window, label, _, _ = dataset[row]
        assert np.array_equal(window.numpy(), expected[row]) and label.item() == index["label"][row]
