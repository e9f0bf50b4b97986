"""Fixed-length overlapping windows: what the network sees of a recording.

Torch-free: featurize, training and serving cut windows with these functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


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


@dataclass(frozen=True)
class WholeFileSpec:
    """Features of the whole recording (eGeMAPS functionals): one "window" of one frame per file,
    with WindowSpec's interface so featurize, training and serving index it the same way."""

    sample_rate: int
    step_seconds: float = 0.0
    frames: int = 1

    def count(self, n_samples: int) -> int:
        return 1


# features.name of front ends that describe a whole recording (features.egemaps), not windows.
WHOLE_FILE_FEATURES = ("egemaps",)


def window_spec(features: Mapping[str, Any]) -> WindowSpec | WholeFileSpec:
    """The windows a features config cuts: WindowSpec, or WholeFileSpec for whole-recording features."""
    if features.get("name") in WHOLE_FILE_FEATURES:
        return WholeFileSpec(sample_rate=int(features["sample_rate"]))
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
