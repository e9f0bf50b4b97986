"""The window front ends in numpy: `features.mfcc.MfccExtractor` (torchaudio's MFCC) and
`LogMelExtractor` (its dB mel spectrogram, no DCT) without torch.

Serving runs this one (its install has no torch); featurize and training run the
torch one, batched on the training device. Both follow torchaudio's
`transforms.MFCC` with the settings below, which `model.json` records:

  STFT      periodic Hann window of win_length centred in n_fft, centred frames
            (signal reflect-padded by n_fft // 2), hop_length, power |z|^2
  mel       `functional.melscale_fbanks`: HTK scale, triangles from f_min (F_MIN unless
            the features set it) to sample_rate / 2, no area normalisation
  dB        10 * log10(max(power, AMIN)), floored at TOP_DB below each window's maximum
            (log(power + LOG_MELS_OFFSET) instead when log_mels)
  DCT       `functional.create_dct`: type II, orthonormal, the first n_mfcc rows
            (MFCC only; log-mel features are the dB mel bands themselves)

tests/test_numpy_frontend.py holds the two within 1e-4 on real demo windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from spira.features.egemaps import EgemapsExtractor
from spira.features.windows import WindowSpec, cut_windows

MEL_SCALE = "htk"
MEL_NORM = None
F_MIN = 0.0
TOP_DB = 80.0
AMIN = 1e-10
LOG_MELS_OFFSET = 1e-6


def hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """torch.hann_window(win_length) (periodic), zero-padded to n_fft around the centre as torch.stft places it."""
    window = np.zeros(n_fft, dtype=np.float64)
    left = (n_fft - win_length) // 2
    window[left : left + win_length] = 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(win_length) / win_length)
    return window


def hz_to_mel(frequency: float) -> float:
    return 2595.0 * math.log10(1.0 + frequency / 700.0)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) triangular filters on the HTK mel scale, unnormalised (torchaudio's melscale_fbanks)."""
    all_freqs = np.linspace(0, sample_rate // 2, n_freqs)
    f_pts = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - all_freqs[:, None]
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return np.maximum(0.0, np.minimum(down, up))


def dct_matrix(n_mfcc: int, n_mels: int) -> np.ndarray:
    """(n_mels, n_mfcc) orthonormal DCT-II, right-multiplied (torchaudio's create_dct with norm 'ortho')."""
    n = np.arange(n_mels, dtype=np.float64)
    k = np.arange(n_mfcc, dtype=np.float64)[:, None]
    dct = np.cos(math.pi / n_mels * (n + 0.5) * k)
    dct[0] *= 1.0 / math.sqrt(2.0)
    dct *= math.sqrt(2.0 / n_mels)
    return dct.T


@dataclass(frozen=True)
class NumpyFrontEnd:
    """Batched MFCC or log-mel: (n_windows, window_samples) float32 -> (n_windows, frames, coefficients) float32."""

    n_fft: int
    hop_length: int
    window: np.ndarray  # (n_fft,)
    filterbank: np.ndarray  # (n_fft // 2 + 1, n_mels)
    dct: np.ndarray | None  # (n_mels, n_mfcc); None: log-mel
    log_mels: bool

    def mel_power(self, windows: np.ndarray) -> np.ndarray:
        """(n_windows, frames, n_mels) mel power of a centred, reflect-padded STFT (float64)."""
        pad = self.n_fft // 2
        padded = np.pad(np.asarray(windows, dtype=np.float64), ((0, 0), (pad, pad)), mode="reflect")
        frames = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft, axis=1)[:, :: self.hop_length]
        spectrum = np.fft.rfft(frames * self.window, axis=-1)
        return (spectrum.real**2 + spectrum.imag**2) @ self.filterbank

    def file_windows(self, samples: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, int]:
        """The features of the windows `cut_windows` cuts from one recording, and its padded samples."""
        windows, padded = cut_windows(samples, spec)
        return self(windows), padded

    def __call__(self, windows: np.ndarray) -> np.ndarray:
        power = self.mel_power(windows)
        if self.log_mels:
            spectrum = np.log(power + LOG_MELS_OFFSET)
        else:
            spectrum = 10.0 * np.log10(np.maximum(power, AMIN))
            # The floor is relative to each window's own maximum, as the torch front end's.
            spectrum = np.maximum(spectrum, spectrum.max(axis=(1, 2), keepdims=True) - TOP_DB)
        return (spectrum if self.dct is None else spectrum @ self.dct).astype(np.float32)


# features.name of the front ends this module computes.
NUMPY_FRONT_ENDS = ("mfcc", "logmel")


def build_numpy_extractor(features: Mapping[str, Any]) -> NumpyFrontEnd | EgemapsExtractor:
    """The front end of a features config (or of model.json's `features`), as `mfcc.build_extractor` reads it:
    MFCC or log-mel in numpy, or openSMILE's eGeMAPS (no torch in either)."""
    name = features.get("name", "mfcc")
    if name == "egemaps":
        return EgemapsExtractor(int(features["sample_rate"]))
    if name not in NUMPY_FRONT_ENDS:
        raise ValueError(f"features.name {name!r} has no numpy front end: use one of {[*NUMPY_FRONT_ENDS, 'egemaps']}")
    n_fft, sample_rate, n_mels = int(features["n_fft"]), int(features["sample_rate"]), int(features["n_mels"])
    return NumpyFrontEnd(
        n_fft=n_fft,
        hop_length=int(features["hop_length"]),
        window=hann_window(int(features["win_length"]), n_fft),
        filterbank=mel_filterbank(n_fft // 2 + 1, float(features.get("f_min", F_MIN)), sample_rate / 2, n_mels, sample_rate),
        dct=dct_matrix(int(features["n_mfcc"]), n_mels) if name == "mfcc" else None,
        log_mels=bool(features.get("log_mels", False)),
    )
