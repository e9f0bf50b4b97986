"""The serving front end in numpy against torchaudio, on real demo recordings:
the resampler against `torchaudio.functional.resample`, the MFCC against
torchaudio's MFCC and against the pipeline's own torch extractor (featurize, training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

from spira.config import compose_config
from spira.data.resample import sinc_resampler
from spira.data.validate import decode_and_check, file_check
from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.features.frontend import build_numpy_extractor
from spira.features.mfcc import build_extractor
from spira.features.windows import cut_windows, window_spec
from test_feature_parity import MAX_ABS_DIFFERENCE

# The bound of the ports: the same formulas, only float rounding between them.
PORT_BOUND = 1e-4
SOURCE_RATES = (48000, 44100, 8000)
# Log-mel bands are dB values themselves (tens of dB, no DCT to average over bands): the torch
# extractor's float32 mel power (about 1e-7 relative) against numpy's float64 is up to ~2e-3 dB.
# Stated in docs/serving.md; 5e-3 dB is 1e-4 of a band's typical spread after standardisation.
LOG_MEL_BOUND_DB = 5e-3


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Path]:
    """Demo-cohort utterances recorded at 48, 44.1 and 8 kHz."""
    root = tmp_path_factory.mktemp("demo")
    config = DemoCohortConfig(
        n_speakers=6, utterances_per_speaker=1, min_seconds=5.0, max_seconds=9.0, sample_rates=SOURCE_RATES, site_rate_share=0.0,
        stereo_fraction=0.0, flac_fraction=0.0, n_noise_files=1, noise_seconds=2.0, num_workers=0,
    )  # fmt: skip
    generate_demo_cohort(root, config)
    files = sorted(path for path in root.rglob("*.wav") if "noise" not in path.parts)
    assert {sf.info(path).samplerate for path in files} == set(SOURCE_RATES)
    return files


def test_numpy_resampler_matches_torchaudio_on_real_audio(recordings):
    for path in recordings:
        samples, rate = sf.read(path, dtype="float32")
        expected = AF.resample(torch.from_numpy(samples), rate, 16000).numpy()
        got = sinc_resampler(rate, 16000)(samples)
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() <= PORT_BOUND, path.name
        assert np.abs(expected).max() > 0.1  # speech, not silence


def test_numpy_mfcc_matches_torchaudio_and_the_pipeline_extractor_on_real_windows(recordings):
    cfg = compose_config()
    spec, numpy_mfcc, torch_mfcc = window_spec(cfg.features), build_numpy_extractor(cfg.features), build_extractor(cfg.features)
    check = file_check(cfg.data.sample_rate, cfg.data.validation)
    # torchaudio's MFCC with its matrices built and applied in float64: the formulas, without float32 rounding.
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        melkwargs = {key: int(cfg.features[key]) for key in ("n_fft", "win_length", "hop_length", "n_mels")}
        reference = T.MFCC(sample_rate=int(cfg.features.sample_rate), n_mfcc=int(cfg.features.n_mfcc), log_mels=False, melkwargs=melkwargs)
    finally:
        torch.set_default_dtype(previous)
    worst_reference, worst_pipeline, windows_seen = 0.0, 0.0, 0
    for path in recordings:
        result, samples = decode_and_check(str(path), path.name, check)
        assert samples is not None, result.message
        windows, _ = cut_windows(samples, spec)
        got = numpy_mfcc(windows)
        with torch.inference_mode():
            expected = reference(torch.from_numpy(windows).double().unsqueeze(1)).squeeze(1).transpose(1, 2).numpy()
            pipeline = torch_mfcc(torch.from_numpy(windows)).numpy()
        assert got.shape == pipeline.shape == (len(windows), spec.frames, cfg.features.n_mfcc) and got.dtype == np.float32
        worst_reference = max(worst_reference, float(np.abs(got - expected).max()))
        worst_pipeline = max(worst_pipeline, float(np.abs(got - pipeline).max()))
        windows_seen += len(windows)
    assert windows_seen >= 12
    assert worst_reference <= PORT_BOUND
    # The pipeline's extractor runs in float32: its own rounding (the bound docs/serving.md states for two torch paths).
    assert worst_pipeline <= MAX_ABS_DIFFERENCE


def test_numpy_log_mels_match_the_pipeline_extractor(recordings):
    features = compose_config(["features.log_mels=true"]).features
    samples, rate = sf.read(recordings[0], dtype="float32")
    windows, _ = cut_windows(sinc_resampler(rate, 16000)(samples), window_spec(features))
    with torch.inference_mode():
        expected = build_extractor(features)(torch.from_numpy(windows)).numpy()
    assert np.abs(build_numpy_extractor(features)(windows) - expected).max() <= MAX_ABS_DIFFERENCE


def test_numpy_log_mel_bands_match_the_pipeline_extractor(recordings):
    features = compose_config(["features=logmel", "model=cnn6"]).features
    spec = window_spec(features)
    worst = 0.0
    for path in recordings:
        samples, rate = sf.read(path, dtype="float32")
        windows, _ = cut_windows(sinc_resampler(rate, 16000)(samples), spec)
        with torch.inference_mode():
            expected = build_extractor(features)(torch.from_numpy(windows)).numpy()
        got = build_numpy_extractor(features)(windows)
        assert got.shape == expected.shape == (len(windows), 401, 64) and got.dtype == np.float32
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst <= LOG_MEL_BOUND_DB


def test_a_front_end_name_without_an_extractor_is_refused():
    with pytest.raises(ValueError, match="features.name 'wav2vec' has no numpy front end"):
        build_numpy_extractor({"name": "wav2vec", "n_fft": 512, "sample_rate": 16000, "n_mels": 64, "hop_length": 160, "win_length": 512})
    with pytest.raises(ValueError, match="features.name 'wav2vec' has no front end"):
        build_extractor({"name": "wav2vec"})
