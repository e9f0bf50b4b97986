"""Audio decoding: soundfile decodes, `data.resample` resamples (torchaudio's sinc
resampler in numpy; no torch, no torchcodec/FFmpeg).

Files are decoded in blocks and resampled as a stream, so a ten-minute 96 kHz
stereo recording never needs more memory than one block plus its 16 kHz mono
result.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from spira.data.resample import sinc_resampler

# Frames read per block: 64 Ki frames is 0.5 MiB per channel of float32.
DEFAULT_BLOCK_FRAMES = 65536


def to_mono(samples: np.ndarray) -> np.ndarray:
    """Average channels of a (frames, channels) array; 1-D input is returned as is."""
    return samples.mean(axis=1, dtype=np.float32) if samples.ndim == 2 else samples


def peak_normalize_in_place(samples: np.ndarray) -> np.ndarray:
    """Scale so the largest absolute sample is 1 (SPIRA normalises every file on load).

    In place: for a long recording a copy would double the memory it needs.
    """
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak > 0:
        samples /= np.float32(peak)
    return samples


class StreamingResampler:
    """Band-limited (sinc) resampling of a mono signal that arrives in blocks.

    The sinc resampler is a strided convolution: output j only sees input
    samples within the kernel width around j * source_rate / target_rate. Each
    step resamples `step` new input samples together with `context` samples of
    history and look-ahead and keeps the outputs of the new samples only; steps
    and context are whole resampling periods, so every output lines up with the
    one resampling the whole signal at once would give, with the same length
    (ceil(n * target / source)).
    """

    def __init__(self, source_rate: int, target_rate: int, step_frames: int = DEFAULT_BLOCK_FRAMES):
        self.source_rate, self.target_rate = source_rate, target_rate
        self.identity = source_rate == target_rate
        if self.identity:
            self.pending: list[np.ndarray] = []
            return
        self.resampler = sinc_resampler(source_rate, target_rate)
        period_in, self.period_out = self.resampler.orig, self.resampler.new
        self.context = period_in * math.ceil((self.resampler.width + 1) / period_in)
        self.step = period_in * max(1, step_frames // period_in)
        # The zeros stand for the silence before the signal that whole-signal resampling pads with.
        self.buffer = np.zeros(self.context, dtype=np.float32)

    def _resample(self, chunk: np.ndarray, keep_inputs: int) -> np.ndarray:
        out = self.resampler(chunk)
        first = self.context * self.period_out // self.resampler.orig
        return out[first : first + math.ceil(keep_inputs * self.period_out / self.resampler.orig)]

    def push(self, block: np.ndarray) -> list[np.ndarray]:
        """Feed input samples; returns the output samples that are final."""
        if self.identity:
            return [block.copy()]
        self.buffer = np.concatenate([self.buffer, block])
        ready = []
        while len(self.buffer) >= self.context + self.step + self.context:
            ready.append(self._resample(self.buffer[: 2 * self.context + self.step], self.step))
            self.buffer = self.buffer[self.step :]
        return ready

    def flush(self) -> list[np.ndarray]:
        """The remaining output, with silence after the end of the signal."""
        if self.identity:
            return []
        remaining = len(self.buffer) - self.context
        if remaining <= 0:
            return []
        chunk = np.concatenate([self.buffer, np.zeros(self.context, dtype=np.float32)])
        return [self._resample(chunk, remaining)]


class OutputBuffer:
    """The resampled output, written into one array sized from the header's length.

    Holding the pieces and joining them at the end would need twice the output
    at once. Headers can be wrong (MP3 lengths are estimates), so samples past
    the expected length are kept aside and joined.
    """

    # A corrupt header must not reserve unbounded memory: past this, grow as needed.
    MAX_RESERVED = 16000 * 3600

    def __init__(self, expected: int):
        self.array = np.empty(min(max(expected, 0), self.MAX_RESERVED), dtype=np.float32)
        self.filled = 0
        self.overflow: list[np.ndarray] = []

    def extend(self, parts: list[np.ndarray]) -> None:
        for part in parts:
            take = min(len(self.array) - self.filled, len(part))
            self.array[self.filled : self.filled + take] = part[:take]
            self.filled += take
            if take < len(part):
                self.overflow.append(np.array(part[take:], dtype=np.float32))

    def samples(self) -> np.ndarray:
        if self.overflow:
            return np.concatenate([self.array[: self.filled], *self.overflow])
        return self.array[: self.filled]


@dataclass(frozen=True)
class DecodedAudio:
    """A file decoded to mono float32 at the target rate, with what validation needs.

    `samples` are not normalised; `peak` and `clipped_fraction` describe the
    source samples (every channel, before downmix and resampling).
    """

    samples: np.ndarray
    source_rate: int
    channels: int
    source_frames: int
    declared_frames: int
    content_hash: str
    peak: float
    clipped_fraction: float
    all_finite: bool


def decode_audio(
    path: str | Path, target_rate: int, clip_level: float = 0.999, block_frames: int = DEFAULT_BLOCK_FRAMES
) -> DecodedAudio:
    """Decode any soundfile-readable file block by block.

    The content hash covers the decoded source samples, rate and channel count,
    so the same recording stored under two names (or re-encoded losslessly)
    hashes the same. Decoding stops at the first non-finite block: such a file
    is rejected whole. Raises soundfile.LibsndfileError (or RuntimeError) on
    files that cannot be decoded.
    """
    digest = hashlib.sha256()
    peak, clipped, frames, all_finite = 0.0, 0, 0, True
    with sf.SoundFile(str(path)) as audio:
        source_rate, channels, declared = int(audio.samplerate), int(audio.channels), int(audio.frames)
        digest.update(f"{source_rate}:{channels}:".encode())
        resampler = StreamingResampler(source_rate, target_rate, block_frames)
        output = OutputBuffer(math.ceil(declared * target_rate / source_rate))
        while True:
            block = audio.read(block_frames, dtype="float32", always_2d=True)
            if not len(block):
                break
            if not np.isfinite(block).all():
                all_finite = False
                break
            digest.update(np.ascontiguousarray(block).tobytes())
            magnitude = np.abs(block)
            peak = max(peak, float(magnitude.max()))
            clipped += int(np.count_nonzero(magnitude >= clip_level))
            frames += len(block)
            output.extend(resampler.push(to_mono(block)))
        output.extend(resampler.flush())
    samples = output.samples()
    return DecodedAudio(
        samples=samples,
        source_rate=source_rate,
        channels=channels,
        source_frames=frames,
        declared_frames=declared,
        content_hash=digest.hexdigest(),
        peak=peak,
        clipped_fraction=clipped / max(1, frames * channels),
        all_finite=all_finite,
    )


def write_float_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV, byte-identical for identical samples.

    libsndfile stamps float WAVs with the write time (PEAK chunk), which would
    make every prepared file, and so every DVC hash, differ between runs.
    """
    # Imported here: only prepare and the demo write audio, and the serving install has no scipy.
    import scipy.io.wavfile

    try:
        scipy.io.wavfile.write(path, sample_rate, np.asarray(samples, dtype=np.float32))
    except OSError as error:
        # write() errors name no file; a full disk is reported against the file being written.
        if error.filename is None:
            error.filename = str(path)
        raise
