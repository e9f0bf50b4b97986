"""SPIRA's ward-noise insertion protocol.

Patients were recorded in noisy wards and controls elsewhere, so a model
trained on raw audio learns the ward, not the voice. Adding ward-noise clips to
both classes during training (controls one clip more, since patients already
carry ward noise) removes that shortcut. The same rule builds the noisy test
set: one clip on each control, none on patients.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# SPIRA's measured min and max peak of the noise-only stretches of its patient files.
SPIRA_NOISE_PEAK_RANGE = (0.033474047, 0.19233719)


class WardNoiseInserter:
    """Adds `num_noise[label]` random ward-noise clips to a (peak-normalised) signal.

    Each clip comes from a random noise recording, starts at a random offset,
    is cut to the signal's length (looped when the recording is shorter) and is
    rescaled so its peak amplitude is Uniform(min_amplitude, max_amplitude).
    """

    def __init__(
        self,
        noise_clips: Sequence[np.ndarray],
        num_noise_control: int,
        num_noise_patient: int,
        min_amplitude: float,
        max_amplitude: float,
    ):
        if not noise_clips and max(num_noise_control, num_noise_patient) > 0:
            raise ValueError("ward-noise insertion needs at least one noise recording (data.noise_manifest)")
        if not 0 <= min_amplitude <= max_amplitude:
            raise ValueError(f"noise amplitude bounds must satisfy 0 <= min <= max, got {min_amplitude}, {max_amplitude}")
        self.noise_clips = [np.asarray(clip, dtype=np.float32) for clip in noise_clips]
        self.num_noise = {0: int(num_noise_control), 1: int(num_noise_patient)}
        self.min_amplitude = float(min_amplitude)
        self.max_amplitude = float(max_amplitude)

    def clip(self, length: int, rng: np.random.Generator) -> np.ndarray:
        """One noise clip of `length` samples with its peak drawn from the bounds."""
        recording = self.noise_clips[rng.integers(len(self.noise_clips))]
        if recording.shape[0] < length:
            recording = np.tile(recording, length // recording.shape[0] + 1)
        offset = int(rng.integers(recording.shape[0] - length + 1))
        segment = recording[offset : offset + length]
        peak = float(np.max(np.abs(segment)))
        amplitude = rng.uniform(self.min_amplitude, self.max_amplitude)
        return segment * (amplitude / peak) if peak > 0 else segment

    def __call__(self, samples: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
        noisy = samples.astype(np.float32, copy=True)
        for _ in range(self.num_noise[int(label)]):
            noisy += self.clip(samples.shape[0], rng)
        return noisy
