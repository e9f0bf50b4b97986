"""Band-limited (sinc) resampling in numpy: torchaudio's `resample` with its defaults
(`sinc_interp_hann`, lowpass_filter_width 6, rolloff 0.99), without torch.

The kernel is built exactly as `torchaudio.functional.functional._get_sinc_resample_kernel`
builds it (float64, cached as float32, as `torchaudio.transforms.Resample` does)
and applied as its `_apply_sinc_resample_kernel` applies it: the signal padded
with `width` zeros before and `width + orig` after, a strided correlation with
one filter per output phase, cut to ceil(n * new / orig) samples.
tests/test_numpy_frontend.py holds it to torchaudio's on real audio.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LOWPASS_FILTER_WIDTH = 6
ROLLOFF = 0.99


@dataclass(frozen=True)
class SincResampler:
    """Resampling from `orig` to `new` samples per period (the rates divided by their gcd)."""

    orig: int
    new: int
    width: int
    kernel: np.ndarray  # (new, 2 * width + orig) float32: one filter per output phase

    def __call__(self, signal: np.ndarray) -> np.ndarray:
        """The resampled 1-D float32 signal, ceil(len * new / orig) samples long.

        Output frame i is the padded signal's samples [i * orig, i * orig + taps) times
        the kernel. Those frames overlap, which BLAS cannot read in place; cut into
        column blocks of `orig` taps, each block is a plain reshape of the signal,
        so the correlation is a few matrix products with no copy of the frames.
        """
        length, taps = signal.shape[0], self.kernel.shape[1]
        frames = length // self.orig + 1  # the strided correlation's output frames
        blocks = -(-taps // self.orig)
        padded = np.zeros((frames + blocks) * self.orig, dtype=np.float32)
        padded[self.width : self.width + length] = signal
        resampled = np.zeros((frames, self.new), dtype=np.float32)
        for start in range(0, taps, self.orig):
            columns = min(self.orig, taps - start)
            block = padded[start : start + frames * self.orig].reshape(frames, self.orig)[:, :columns]
            resampled += block @ self.kernel[:, start : start + columns].T
        return resampled.reshape(-1)[: math.ceil(self.new * length / self.orig)]


def sinc_resampler(source_rate: int, target_rate: int) -> SincResampler:
    gcd = math.gcd(int(source_rate), int(target_rate))
    orig, new = int(source_rate) // gcd, int(target_rate) // gcd
    base_freq = min(orig, new) * ROLLOFF
    width = math.ceil(LOWPASS_FILTER_WIDTH * orig / base_freq)
    idx = np.arange(-width, width + orig, dtype=np.float64)[None, :] / orig
    # torchaudio divides an integer arange here, which torch does in float32 before
    # adding the float64 idx: the same rounding keeps the kernels equal.
    phases = (np.arange(0, -new, -1) / new).astype(np.float32).astype(np.float64)[:, None]
    t = np.clip((phases + idx) * base_freq, -LOWPASS_FILTER_WIDTH, LOWPASS_FILTER_WIDTH)
    window = np.cos(t * math.pi / LOWPASS_FILTER_WIDTH / 2) ** 2
    t = t * math.pi
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, 1.0, np.sin(t) / t)
    kernels *= window * (base_freq / orig)
    return SincResampler(orig=orig, new=new, width=width, kernel=np.ascontiguousarray(kernels, dtype=np.float32))
