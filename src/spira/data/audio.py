"""Audio decoding: soundfile decodes, torchaudio resamples (no torchcodec/FFmpeg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io.wavfile
import soundfile as sf
import torch
import torchaudio.functional as AF


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array; 1-D input is returned as is."""
    return samples.mean(axis=1) if samples.ndim == 2 else samples


def resample(samples: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Band-limited (sinc) resampling of a mono float32 signal."""
    if source_rate == target_rate:
        return samples
    resampled = AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), source_rate, target_rate)
    return resampled.numpy()


def peak_normalize(samples: np.ndarray) -> np.ndarray:
    """Scale so the largest absolute sample is 1 (SPIRA normalises every file on load)."""
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return samples / peak if peak > 0 else samples


def load_audio(path: str | Path, target_rate: int) -> tuple[np.ndarray, int]:
    """Decode any soundfile-readable file to mono float32 at `target_rate`, peak-normalised.

    Returns the samples and the file's original sample rate.
    """
    samples, source_rate = sf.read(str(path), dtype="float32", always_2d=False)
    mono = resample(to_mono(samples).astype(np.float32, copy=False), source_rate, target_rate)
    return peak_normalize(mono).astype(np.float32, copy=False), int(source_rate)


def write_float_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV, byte-identical for identical samples.

    libsndfile stamps float WAVs with the write time (PEAK chunk), which would
    make every prepared file, and so every DVC hash, differ between runs.
    """
    scipy.io.wavfile.write(path, sample_rate, np.asarray(samples, dtype=np.float32))
