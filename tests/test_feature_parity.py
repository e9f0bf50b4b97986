"""Features once per file: the same windows as the window-by-window transform, for any worker count."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.transforms as T

from spira.config import compose_config
from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.features import featurize as featurize_module
from spira.features import mfcc as mfcc_module
from spira.features.featurize import featurize
from spira.features.mfcc import build_extractor
from spira.features.windows import cut_windows, window_spec
from spira.parallel import ordered_map
from spira.pipeline.features import featurize_settings
from test_augment import prepared  # noqa: F401  (the prepared-data fixture)

# Bound stated in docs/performance.md ("Features once per file"): per-file vs per-window MFCC.
MAX_ABS_DIFFERENCE = 1e-3


@pytest.fixture(scope="module")
def demo_recordings(tmp_path_factory) -> list[np.ndarray]:
    """Real demo-cohort utterances (16 kHz WAV), long enough for several windows."""
    root = tmp_path_factory.mktemp("demo")
    config = DemoCohortConfig(
        n_speakers=6, utterances_per_speaker=1, min_seconds=5.0, max_seconds=9.0, sample_rates=(16000,),
        stereo_fraction=0.0, flac_fraction=0.0, n_noise_files=1, noise_seconds=2.0, num_workers=0,
    )
    generate_demo_cohort(root, config)
    recordings = [sf.read(path, dtype="float32")[0] for path in sorted(root.rglob("*.wav")) if "noise" not in path.parts]
    return [samples for samples in recordings if samples.shape[0] > 5 * 16000]


def test_per_file_features_match_the_per_window_transform_on_demo_audio(demo_recordings):
    features = compose_config().features
    spec, extractor = window_spec(features), build_extractor(features)
    reference = T.MFCC(sample_rate=16000, n_mfcc=40, log_mels=False, melkwargs={"n_fft": 1200, "win_length": 400, "hop_length": 160, "n_mels": 40})
    assert len(demo_recordings) >= 4
    worst_torchaudio, windows_seen = 0.0, 0
    with torch.inference_mode():
        for samples in demo_recordings:
            windows, _ = cut_windows(samples, spec)
            per_window = extractor(torch.from_numpy(windows))
            per_file, padded = extractor.file_windows(samples, spec)
            assert padded == 0 and per_file.shape == per_window.shape == (len(windows), 401, 40)
            # Interior and recomputed edge frames alike: the same numbers.
            assert (per_file - per_window).abs().max().item() <= MAX_ABS_DIFFERENCE
            torchaudio_mfcc = reference(torch.from_numpy(windows).unsqueeze(1)).squeeze(1).transpose(1, 2)
            worst_torchaudio = max(worst_torchaudio, (per_file - torchaudio_mfcc).abs().max().item())
            windows_seen += len(windows)
    assert windows_seen >= 8
    # Each frame's own samples through an n_fft FFT: still torchaudio's MFCC up to float rounding.
    assert worst_torchaudio <= MAX_ABS_DIFFERENCE


def test_cpu_blocks_and_one_call_give_torchaudios_mel_power(demo_recordings, monkeypatch):
    extractor = build_extractor(compose_config().features)
    signals = torch.from_numpy(np.stack([samples[: 16000 * 5] for samples in demo_recordings[:3]]))
    with torch.inference_mode():
        blocked = extractor.mel_power(signals)  # a block per signal on a CPU
        monkeypatch.setattr(mfcc_module, "CPU_FRAMES_PER_BLOCK", 10**9)
        whole = extractor.mel_power(signals)  # all frames in one call, as on a GPU
        reference = extractor.mfcc.MelSpectrogram(signals)  # torchaudio: torch.stft, |z|^2
    assert blocked.shape == whole.shape == reference.shape == (3, 40, 501)
    scale = reference.amax(dim=(1, 2), keepdim=True)
    assert ((blocked - whole).abs() / scale).max().item() <= 1e-6
    assert ((blocked - reference).abs() / scale).max().item() <= 1e-5


def test_edge_frames_are_recomputed_not_taken_from_the_file():
    features = compose_config().features
    spec, extractor = window_spec(features), build_extractor(features)
    # A loud second half: window 1's first frames would see it through the file's STFT.
    samples = np.concatenate([np.full(16000 * 3, 0.01, np.float32), np.random.default_rng(0).normal(0, 0.5, 16000 * 3).astype(np.float32)])
    with torch.inference_mode():
        per_file, _ = extractor.file_windows(samples, spec)
        per_window = extractor(torch.from_numpy(cut_windows(samples, spec)[0]))
    assert per_file.shape[0] == 3
    assert (per_file - per_window).abs().max().item() <= MAX_ABS_DIFFERENCE


def test_short_file_gives_the_padded_window(demo_recordings):
    features = compose_config().features
    spec, extractor = window_spec(features), build_extractor(features)
    short = demo_recordings[0][: 16000 * 3]
    with torch.inference_mode():
        per_file, padded = extractor.file_windows(short, spec)
        per_window = extractor(torch.from_numpy(cut_windows(short, spec)[0]))
    assert padded == 16000 and torch.equal(per_file, per_window)


def test_featurize_bytes_do_not_depend_on_the_worker_count(prepared: Path, tmp_path: Path, monkeypatch):
    # The pool even for a handful of files (it serves 64 files or more otherwise).
    monkeypatch.setattr(featurize_module, "ordered_map", partial(ordered_map, min_items=1))
    outputs = {}
    for workers in (0, 2):
        cfg = compose_config([f"features.num_workers={workers}"])
        featurize(featurize_settings(cfg), prepared, tmp_path / str(workers), {})
        outputs[workers] = {path.name: path.read_bytes() for path in sorted((tmp_path / str(workers)).iterdir())}
    assert set(outputs[0]) >= {"train.npy", "val.npy", "test.npy", "test_noisy.npy", "normalization.json"}
    assert outputs[0] == outputs[2]


def test_log_mel_features_are_torchaudios_db_mel_spectrogram_per_file_and_per_window(demo_recordings):
    features = compose_config(["features=logmel", "model=cnn6"]).features
    spec, extractor = window_spec(features), build_extractor(features)
    mel = T.MelSpectrogram(sample_rate=16000, n_fft=512, win_length=512, hop_length=160, f_min=50.0, n_mels=64, mel_scale="htk")
    to_db = T.AmplitudeToDB("power", 80.0)
    with torch.inference_mode():
        for samples in demo_recordings:
            windows, _ = cut_windows(samples, spec)
            per_window = extractor(torch.from_numpy(windows))
            per_file, _ = extractor.file_windows(samples, spec)
            assert per_file.shape == per_window.shape == (len(windows), 401, 64) and extractor.num_features == 64
            assert (per_file - per_window).abs().max().item() <= MAX_ABS_DIFFERENCE
            # Each window's dB floor is its own: torchaudio on one window at a time.
            reference = torch.stack([to_db(mel(torch.from_numpy(window))) for window in windows]).transpose(1, 2)
            assert (per_file - reference).abs().max().item() <= MAX_ABS_DIFFERENCE
