"""SPIRA's ward-noise insertion protocol.

Patients were recorded in noisy wards and controls elsewhere, so a model
trained on raw audio learns the ward, not the voice. Adding ward-noise clips to
both classes during training (controls one clip more, since patients already
carry ward noise) removes that shortcut. The same rule builds the noisy test
set: one clip on each control, none on patients.

`probability` < 1 leaves some training windows as recorded: with SPIRA's
always-on insertion every control the model sees carries ward noise, so a quiet
control recording at test time is unlike any control seen in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.ndimage import maximum_filter1d


class WardNoiseInserter:
    """Adds `num_noise[label]` random ward-noise clips to a (peak-normalised) signal,
    with `probability` (else the signal is left as it is).

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
        probability: float = 1.0,
    ):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"ward-noise probability must be in [0, 1], got {probability}")
        if not noise_clips and max(num_noise_control, num_noise_patient) > 0:
            raise ValueError("ward-noise insertion needs at least one noise recording (data.noise_manifest)")
        if not 0 <= min_amplitude <= max_amplitude:
            raise ValueError(f"noise amplitude bounds must satisfy 0 <= min <= max, got {min_amplitude}, {max_amplitude}")
        self.noise_clips = [np.asarray(clip, dtype=np.float32) for clip in noise_clips]
        self.num_noise = {0: int(num_noise_control), 1: int(num_noise_patient)}
        self.min_amplitude = float(min_amplitude)
        self.max_amplitude = float(max_amplitude)
        self.probability = float(probability)

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
        # No draw at probability 1, so SPIRA's protocol keeps its random stream.
        if self.probability < 1.0 and rng.random() >= self.probability:
            return noisy
        for _ in range(self.num_noise[int(label)]):
            noisy += self.clip(samples.shape[0], rng)
        return noisy


class BatchWardNoise:
    """SPIRA's ward-noise insertion on a batch of windows, as tensor operations on their device.

    The same protocol and distributions as WardNoiseInserter: per window, with
    the inserter's probability, `num_noise[label]` clips, each from a uniformly
    drawn recording (looped when shorter than the window) at a uniform offset,
    rescaled to a peak drawn uniformly from the bounds. The recordings are prepared once (looped
    to the window length, concatenated into one bank) and moved to the batch's
    device on first use. Draws come from torch's RNG on that device, which
    Lightning seeds, so a seed gives the same noise.
    """

    def __init__(self, inserter: WardNoiseInserter, window_samples: int):
        self.length = int(window_samples)
        looped = [np.tile(clip, self.length // clip.shape[0] + 1) if clip.shape[0] < self.length else clip for clip in inserter.noise_clips]
        bank = np.concatenate(looped) if looped else np.zeros(0, np.float32)
        self.bank = torch.from_numpy(bank)
        # peaks[i] = max |bank[i : i + window]|: each stretch's peak, measured once.
        peaks = maximum_filter1d(np.abs(bank), self.length, origin=-(self.length // 2), mode="constant", cval=0.0) if looped else bank
        self.peaks = torch.from_numpy(peaks)
        lengths = torch.tensor([clip.shape[0] for clip in looped], dtype=torch.int64)
        self.starts = torch.cumsum(lengths, 0) - lengths
        # Offsets 0 .. length(recording) - window: as many as WardNoiseInserter draws from.
        self.offsets = lengths - self.length + 1
        self.num_noise = torch.tensor([inserter.num_noise[0], inserter.num_noise[1]], dtype=torch.int64)
        # A Python int: no device round trip per batch. WardNoiseInserter refuses
        # clips to insert without recordings, so the bank is not empty when this is > 0.
        self.max_clips = max(inserter.num_noise.values())
        self.min_amplitude, self.max_amplitude = inserter.min_amplitude, inserter.max_amplitude
        self.probability = inserter.probability
        self._on_device: dict[torch.device, tuple[torch.Tensor, ...]] = {}

    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, ...]:
        if device not in self._on_device:
            self._on_device[device] = tuple(t.to(device) for t in (self.bank, self.peaks, self.starts, self.offsets, self.num_noise))
        return self._on_device[device]

    def __call__(self, windows: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(batch, window_samples) windows and their 0/1 labels -> noisy windows (new tensor)."""
        if windows.shape[1] != self.length:
            raise ValueError(f"ward noise prepared for {self.length}-sample windows, got {windows.shape[1]}")
        bank, peaks, starts, offsets, num_noise = self._tensors(windows.device)
        counts = num_noise[labels.long()]
        noisy = windows.clone()
        if self.max_clips == 0:
            return noisy
        if self.probability < 1.0:
            counts = counts * (torch.rand(windows.shape[0], device=windows.device) < self.probability)
        # Every window-length stretch of the bank, as a view: indexing copies just the chosen rows.
        stretches = bank.unfold(0, self.length, 1)
        for slot in range(self.max_clips):
            recording = torch.randint(0, starts.shape[0], (windows.shape[0],), device=windows.device)
            offset = (torch.rand(windows.shape[0], device=windows.device, dtype=torch.float64) * offsets[recording]).long()
            first = starts[recording] + offset
            segment, peak = stretches.index_select(0, first), peaks[first]
            amplitude = self.min_amplitude + (self.max_amplitude - self.min_amplitude) * torch.rand(windows.shape[0], device=windows.device)
            scale = torch.where(peak > 0, amplitude / peak.clamp(min=torch.finfo(peak.dtype).tiny), torch.ones_like(peak))
            noisy.addcmul_(segment, (scale * (slot < counts))[:, None].to(noisy.dtype))
        return noisy
