"""MFCC (SPIRA's front end) and log-mel (PANN's) features over overlapping fixed-length windows.

`features.name` picks the front end (`build_extractor`): both compute the same mel
power spectrogram; MFCC applies the dB conversion and a DCT, log-mel stops after the dB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torchaudio.transforms as T

from spira.features.egemaps import EgemapsExtractor
from spira.features.frontend import F_MIN, LOG_MELS_OFFSET, MEL_NORM, MEL_SCALE, TOP_DB
from spira.features.windows import WindowSpec, cut_windows

# Frames per FFT call on a CPU, so that its buffers (frames x n_fft) stay in cache: on
# the 2-core Xeon VM a batch of 16 training windows in one call takes twice as long
# as in blocks of 100 to 800 frames, and an 8 s file 10% longer.
CPU_FRAMES_PER_BLOCK = 512


class MfccExtractor(torch.nn.Module):
    """Batched MFCC: (n_windows, window_samples) -> (n_windows, frames, n_mfcc)."""

    def __init__(
        self, sample_rate: int, n_mfcc: int, n_mels: int, n_fft: int, win_length: int, hop_length: int, log_mels: bool, f_min: float = F_MIN
    ):
        super().__init__()
        self.mfcc = T.MFCC(
            sample_rate=sample_rate,
            n_mfcc=n_mfcc,
            log_mels=log_mels,
            melkwargs={
                "n_fft": n_fft, "win_length": win_length, "hop_length": hop_length, "n_mels": n_mels,
                "f_min": f_min, "mel_scale": MEL_SCALE, "norm": MEL_NORM,
            },
        )  # fmt: skip
        # The settings the numpy front end (serving) shares: features.frontend.
        self.mfcc.amplitude_to_DB = T.AmplitudeToDB("power", TOP_DB)
        # Each bin's filter weights twice, for its real and imaginary part side by side.
        self.register_buffer("interleaved_filterbank", self.mfcc.MelSpectrogram.mel_scale.fb.repeat_interleave(2, dim=0), persistent=False)

    @property
    def num_features(self) -> int:
        """Coefficients per frame."""
        return self.mfcc.n_mfcc

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.from_mel_power(self.mel_power(windows))

    def mel_power(self, signal: torch.Tensor) -> torch.Tensor:
        """Mel power spectrogram (..., n_mels, frames) of a centred, reflect-padded STFT.

        torchaudio's MelSpectrogram with power 2, with less work per frame: a frame
        is the win_length samples its window covers (of the signal reflect-padded
        as torch.stft pads it), transformed with an n_fft-point FFT; the zeros
        around the window only turn each bin's phase, which the power drops. On
        a CPU the frames go through in blocks of about CPU_FRAMES_PER_BLOCK,
        whose buffers stay in cache. The MFCC differ from torchaudio's by
        float32 rounding (tests/test_feature_parity.py)."""
        stft = self.mfcc.MelSpectrogram.spectrogram
        reach_left, reach_right = self._frame_reach()
        shape = signal.shape
        if shape[-1] <= max(reach_left, reach_right):
            raise ValueError(f"reflect padding needs signals of more than {max(reach_left, reach_right)} samples, got {shape[-1]}")
        flat = signal.reshape(-1, shape[-1])
        # Reflect padding as torch.stft's (F.pad's), by concatenation: 4x faster on a CPU.
        padded = torch.cat([flat[:, 1 : reach_left + 1].flip(-1), flat, flat[:, -reach_right - 1 : -1].flip(-1)], dim=-1)
        frames = padded.unfold(-1, stft.win_length, stft.hop_length)  # (signals, frames, win_length), a view
        if signal.device.type != "cpu":
            mel = self._mel_of_frames(frames)
        else:
            mel = signal.new_empty(*frames.shape[:2], self.mfcc.MelSpectrogram.n_mels)
            # Several signals per block when they are short (edge segments); a long
            # signal's frames in blocks of equal size.
            n_frames = frames.shape[1]
            signals_per_block = max(1, CPU_FRAMES_PER_BLOCK // n_frames)
            frames_per_block = math.ceil(n_frames / math.ceil(n_frames / CPU_FRAMES_PER_BLOCK))
            for first in range(0, frames.shape[0], signals_per_block):
                rows = slice(first, first + signals_per_block)
                for start in range(0, n_frames, frames_per_block):
                    block = slice(start, start + frames_per_block)
                    mel[rows, block] = self._mel_of_frames(frames[rows, block])
        return mel.transpose(-1, -2).reshape(*shape[:-1], -1, mel.shape[1])

    def _mel_of_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., win_length) frames -> (..., n_mels) mel power."""
        stft = self.mfcc.MelSpectrogram.spectrogram
        # re^2 and im^2 in place, summed by the filterbank product: one pass fewer than re^2 + im^2.
        squares = torch.view_as_real(torch.fft.rfft(frames * stft.window, n=stft.n_fft)).square_()
        return torch.matmul(squares.flatten(-2), self.interleaved_filterbank)

    def from_mel_power(self, power: torch.Tensor) -> torch.Tensor:
        """(n_windows, n_mels, frames) mel power of whole windows -> (n_windows, frames, n_mfcc)."""
        return torch.matmul(self.log_power(power).transpose(1, 2), self.mfcc.dct_mat).contiguous()

    def log_power(self, power: torch.Tensor) -> torch.Tensor:
        """(n_windows, n_mels, frames) mel power -> its log (dB, floored per window; or log(power + offset) when log_mels)."""
        if self.mfcc.log_mels:
            return torch.log(power + LOG_MELS_OFFSET)
        # One channel per window: torchaudio's dB conversion clamps (top_db)
        # relative to the max of each item, and would otherwise treat the whole
        # batch as one item, making a window's features depend on its batch.
        return self.mfcc.amplitude_to_DB(power.unsqueeze(1)).squeeze(1)

    def file_windows(self, samples: np.ndarray, spec: WindowSpec) -> tuple[torch.Tensor, int]:
        """MFCC of the windows `cut_windows` cuts from one file, from one transform of the file.

        Window k's frame j is the file's frame k * step / hop + j, so the mel
        power of the file is computed once and sliced. Only frames whose STFT
        window reaches past a window edge see other samples than in a
        window-by-window transform (which reflects the window's own samples
        there); those edge frames are recomputed from each window's own
        samples, so every frame is the per-window one up to float rounding.
        The dB floor (top_db) stays relative to each window's maximum.
        Returns the (n_windows, frames, n_mfcc) features and the padded samples.
        """
        size, hop, step = spec.window_samples, spec.hop_length, spec.step_samples
        if samples.shape[0] <= size or size % hop or step % hop:
            windows, padded = cut_windows(samples, spec)
            return self(torch.from_numpy(windows)), padded
        count = spec.count(samples.shape[0])
        mel = self.mel_power
        power = mel(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)))
        power = power.unfold(1, spec.frames, step // hop)[:, :count].permute(1, 0, 2).contiguous()
        head, tail, edge = self._edge_frames(size)
        signal = torch.from_numpy(np.ascontiguousarray(samples[: (count - 1) * step + size], dtype=np.float32))
        windows = signal.unfold(0, size, step)
        if head:
            power[:, :, :head] = mel(windows[:, :edge])[:, :, :head]
        if tail:
            power[:, :, -tail:] = mel(windows[:, size - edge :])[:, :, -tail:]
        return self.from_mel_power(power), 0

    def _frame_reach(self) -> tuple[int, int]:
        """(reach_left, reach_right): torch.stft centres a short window inside n_fft, so
        frame j's non-zero window spans samples [j*hop - reach_left, j*hop + reach_right)."""
        stft = self.mfcc.MelSpectrogram.spectrogram
        reach_left = stft.n_fft // 2 - (stft.n_fft - stft.win_length) // 2
        return reach_left, stft.win_length - reach_left

    def _edge_frames(self, size: int) -> tuple[int, int, int]:
        """(head, tail, edge): the first `head` and last `tail` frames of a window whose
        STFT window reaches past the window's edges, and the samples at each end of
        the window from which `mel_power` computes those frames exactly."""
        hop = self.mfcc.MelSpectrogram.spectrogram.hop_length
        reach_left, reach_right = self._frame_reach()
        head = -(-reach_left // hop)
        first_tail = (size - reach_right) // hop + 1
        tail = size // hop + 1 - first_tail
        # A segment of `edge` samples at either end of the window reflects the same
        # samples at that end as the window does, and its edge frames do not reach
        # its other (also reflected) end; a multiple of hop keeps frames aligned.
        needed = max((head - 1) * hop + reach_right, (tail - 1) * hop + reach_left, max(reach_left, reach_right) + 1)
        edge = -(-needed // hop) * hop
        return head, tail, edge


class LogMelExtractor(MfccExtractor):
    """Batched log-mel (PANN's input): (n_windows, window_samples) -> (n_windows, frames, n_mels),
    the MFCC front end's dB mel spectrogram without its DCT."""

    @property
    def num_features(self) -> int:
        return self.mfcc.MelSpectrogram.n_mels

    def from_mel_power(self, power: torch.Tensor) -> torch.Tensor:
        return self.log_power(power).transpose(1, 2).contiguous()


# features.name -> the front end; the numpy one (serving) is features.frontend.build_numpy_extractor.
MEL_FRONT_ENDS = {"mfcc": MfccExtractor, "logmel": LogMelExtractor}


def build_extractor(features: Mapping[str, Any]) -> MfccExtractor | EgemapsExtractor:
    """The front end of a features config for featurize and training: MFCC (`name: mfcc`, the
    default) or log-mel (`name: logmel`) in torch, or openSMILE's eGeMAPS (`name: egemaps`, whole
    recordings, never on a training batch)."""
    name = features.get("name", "mfcc")
    if name == "egemaps":
        return EgemapsExtractor(int(features["sample_rate"]))
    if name not in MEL_FRONT_ENDS:
        raise ValueError(f"features.name {name!r} has no front end: use one of {sorted([*MEL_FRONT_ENDS, 'egemaps'])}")
    n_mels = int(features["n_mels"])
    return MEL_FRONT_ENDS[name](
        sample_rate=int(features["sample_rate"]),
        # log-mel needs no DCT: one of n_mels coefficients keeps torchaudio's MFCC buffers valid.
        n_mfcc=int(features.get("n_mfcc", n_mels)),
        n_mels=n_mels,
        n_fft=int(features["n_fft"]),
        win_length=int(features["win_length"]),
        hop_length=int(features["hop_length"]),
        log_mels=bool(features.get("log_mels", False)),
        f_min=float(features.get("f_min", F_MIN)),
    )
