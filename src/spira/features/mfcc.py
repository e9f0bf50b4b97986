"""MFCC features over overlapping fixed-length windows (SPIRA's front end)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torchaudio.transforms as T


@dataclass(frozen=True)
class WindowSpec:
    sample_rate: int
    window_seconds: float
    step_seconds: float
    hop_length: int

    @property
    def window_samples(self) -> int:
        return int(round(self.window_seconds * self.sample_rate))

    @property
    def step_samples(self) -> int:
        return int(round(self.step_seconds * self.sample_rate))

    @property
    def frames(self) -> int:
        """MFCC frames per window (centred STFT): 4 s at 16 kHz, hop 160 -> 401."""
        return self.window_samples // self.hop_length + 1

    def count(self, n_samples: int) -> int:
        """Windows cut from a signal of n_samples (a short signal gives one padded window)."""
        if n_samples <= self.window_samples:
            return 1
        return (n_samples - self.window_samples) // self.step_samples + 1


def window_spec(features: Mapping[str, Any]) -> WindowSpec:
    return WindowSpec(
        sample_rate=int(features["sample_rate"]),
        window_seconds=float(features["window_seconds"]),
        step_seconds=float(features["step_seconds"]),
        hop_length=int(features["hop_length"]),
    )


def cut_windows(samples: np.ndarray, spec: WindowSpec) -> tuple[np.ndarray, int]:
    """Cut (n_windows, window_samples) windows starting every step.

    A signal shorter than one window is zero-padded at the end; the number of
    padded samples is returned so it can be recorded. Samples after the last
    full window are not used (as in SPIRA).
    """
    size = spec.window_samples
    if samples.shape[0] < size:
        padded = np.zeros(size, dtype=np.float32)
        padded[: samples.shape[0]] = samples
        return padded[None, :], size - samples.shape[0]
    starts = np.arange(spec.count(samples.shape[0])) * spec.step_samples
    windows = np.lib.stride_tricks.sliding_window_view(samples, size)[starts]
    return np.ascontiguousarray(windows, dtype=np.float32), 0


class MfccExtractor(torch.nn.Module):
    """Batched MFCC: (n_windows, window_samples) -> (n_windows, frames, n_mfcc)."""

    def __init__(self, sample_rate: int, n_mfcc: int, n_mels: int, n_fft: int, win_length: int, hop_length: int, log_mels: bool):
        super().__init__()
        self.mfcc = T.MFCC(
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            log_mels=log_mels,
            melkwargs={"n_fft": n_fft, "win_length": win_length, "hop_length": hop_length, "n_mels": n_mels},
        )

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        # One channel per window: torchaudio's dB conversion clamps (top_db)
        # relative to the max of each item, and would otherwise treat the whole
        # batch as one item, making a window's features depend on its batch.
        coefficients = self.mfcc(windows.unsqueeze(1)).squeeze(1)
        return coefficients.transpose(1, 2).contiguous()


def build_extractor(features: Mapping[str, Any]) -> MfccExtractor:
    return MfccExtractor(
        sample_rate=int(features["sample_rate"]),
        n_mfcc=int(features["n_mfcc"]),
        n_mels=int(features["n_mels"]),
        n_fft=int(features["n_fft"]),
        win_length=int(features["win_length"]),
        hop_length=int(features["hop_length"]),
        log_mels=bool(features["log_mels"]),
    )
