"""Calibrate the ward-noise insertion bounds to one's own recordings.

SPIRA rescales every inserted noise clip to a peak drawn from
U(min_amplitude, max_amplitude) = U(0.033474047, 0.19233719): the smallest and
largest peak amplitude of the noise-only stretches (pauses) of its patient
files, each file peak-normalised to 1. Those numbers describe SPIRA's wards and
microphones; another hospital's wards are louder or quieter, and inserting
noise at SPIRA's level would under- or over-state them. This module measures
the same quantity on the prepared data of this pipeline:

    spira calibrate-noise [--params params.yaml] [--split train]
        [--label patient] [--quantile 0.0]

It prints counts and bounds only, never a file name or a speaker id, and the
`dvc exp run -S ...` overrides that put the bounds into training
(augment.ward_noise) and into the noisy test set (noisy_test).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from spira.data.audio import to_mono

# 20 ms frames: the usual speech-analysis frame, short enough to resolve the
# pauses between words, long enough (320 samples at 16 kHz) for a steady RMS.
FRAME_SECONDS = 0.02
# The background level is the RMS of the file's quietest quarter second (a
# minimum-statistics noise floor): it needs one pause anywhere in the file,
# however much of the file is speech. A percentile of frame RMS would instead
# land on quiet speech in files that are mostly speech.
FLOOR_WINDOW_SECONDS = 0.25
# A frame is background when its RMS is within 6 dB (twice the amplitude) of
# the background level: steady noise varies far less than that from one 20 ms
# frame to the next, ward babble and hum a few dB; voiced speech stands well
# above it.
FLOOR_MARGIN_DB = 6.0
# A file whose quietest quarter second is within 10 dB of its loudest frame has
# no pause (a sustained vowel, speech end to end): its "background" would be
# speech. Noise at SPIRA's largest peak (0.19 under a speech peak of 1) has an
# RMS some 15 dB below a loud speech frame, unless it is as dense as white
# noise of uniform amplitude (about 11 dB).
MIN_DYNAMIC_RANGE_DB = 10.0
# A monitor beep or a knock inside a pause lifts a few frames above the
# background level, yet is ward noise: gaps of up to 60 ms between background
# frames are bridged. Syllables last longer (100 ms and more), so speech is not.
BRIDGE_SECONDS = 0.06
# Quiet consonants and the dips between syllables and words (up to ~0.2 s) also
# fall to the background level; a run of background frames counts as a pause
# only from 0.35 s on.
MIN_PAUSE_SECONDS = 0.35
# Speech and breaths fade in and out over up to ~0.1 s; the frames of a fade
# still pass as background while their samples are louder than the noise. 0.1 s
# is trimmed from both ends of every pause before measuring it, so the shortest
# pause leaves 0.15 s of noise to measure.
EDGE_GUARD_SECONDS = 0.1
# Frames below -100 dBFS are digital silence (zero padding, a muted input), not
# ward noise: they neither set the background level nor count as a pause.
DIGITAL_SILENCE_RMS = 1e-5

LABELS = {"patient": 1, "control": 0}


@dataclass(frozen=True)
class NoiseBounds:
    """Bounds for the inserted noise peak, and how many files they rest on."""

    min_amplitude: float
    max_amplitude: float
    files_used: int
    files_skipped: int  # files with no noise-only stretch (or silent files)


def frame_rms(samples: np.ndarray, frame_length: int) -> np.ndarray:
    """RMS of consecutive, non-overlapping frames; a trailing partial frame is left out."""
    n_frames = samples.shape[0] // frame_length
    frames = samples[: n_frames * frame_length].reshape(n_frames, frame_length).astype(np.float64)
    return np.sqrt(np.mean(frames**2, axis=1))


def background_level(rms: np.ndarray, window_frames: int) -> float | None:
    """RMS of the quietest run of `window_frames` frames holding no digital silence; None if none."""
    sound = rms > DIGITAL_SILENCE_RMS
    if sound.sum() < window_frames:
        return None
    power = np.concatenate(([0.0], np.cumsum(np.where(sound, rms**2, 0.0))))
    sounding = np.concatenate(([0], np.cumsum(sound)))
    window_power = (power[window_frames:] - power[:-window_frames]) / window_frames
    whole = (sounding[window_frames:] - sounding[:-window_frames]) == window_frames
    return float(np.sqrt(window_power[whole].min())) if whole.any() else None


def frames_in(seconds: float, frame_seconds: float) -> int:
    # The epsilon keeps 0.35 s / 0.02 s at 18 frames, not 18.000000000000004 -> 19.
    return int(np.ceil(seconds / frame_seconds - 1e-9))


@dataclass(frozen=True)
class PauseDetection:
    """How noise-only stretches are found; the defaults are the constants above."""

    frame_seconds: float = FRAME_SECONDS
    floor_window_seconds: float = FLOOR_WINDOW_SECONDS
    floor_margin_db: float = FLOOR_MARGIN_DB
    min_dynamic_range_db: float = MIN_DYNAMIC_RANGE_DB
    bridge_seconds: float = BRIDGE_SECONDS
    min_pause_seconds: float = MIN_PAUSE_SECONDS
    edge_guard_seconds: float = EDGE_GUARD_SECONDS


def noise_only_stretches(
    samples: np.ndarray, sample_rate: int, detection: PauseDetection = PauseDetection()
) -> list[tuple[int, int]]:
    """The (start, stop) sample ranges of a mono recording's noise-only stretches.

    A pause is a run of at least `min_pause_seconds` of frames whose RMS is
    within `floor_margin_db` of the background level (the RMS of the quietest
    `floor_window_seconds`), gaps of up to `bridge_seconds` included; its
    stretch is the pause less `edge_guard_seconds` at both ends. A file with
    less than `min_dynamic_range_db` between its background level and its
    loudest frame has none.
    """
    d = detection
    frame_length = max(1, round(d.frame_seconds * sample_rate))
    rms = frame_rms(np.asarray(samples), frame_length)
    floor = background_level(rms, frames_in(d.floor_window_seconds, d.frame_seconds))
    if floor is None or rms.max() < floor * 10 ** (d.min_dynamic_range_db / 20):
        return []
    background = (rms > DIGITAL_SILENCE_RMS) & (rms <= floor * 10 ** (d.floor_margin_db / 20))
    if not background.any():  # only with a negative floor_margin_db
        return []
    edges = np.flatnonzero(np.diff(np.concatenate(([0], background.astype(np.int8), [0]))))
    starts, stops = edges[0::2], edges[1::2]
    separate = starts[1:] - stops[:-1] > round(d.bridge_seconds / d.frame_seconds)
    starts, stops = starts[np.r_[True, separate]], stops[np.r_[separate, True]]
    guard, min_frames = round(d.edge_guard_seconds / d.frame_seconds), frames_in(d.min_pause_seconds, d.frame_seconds)
    return [
        ((start + guard) * frame_length, (stop - guard) * frame_length)
        for start, stop in zip(starts.tolist(), stops.tolist())
        if stop - start >= min_frames and stop - start > 2 * guard
    ]


def noise_only_peak(
    samples: np.ndarray, sample_rate: int, detection: PauseDetection = PauseDetection()
) -> float | None:
    """Peak absolute amplitude over a recording's noise-only stretches, relative to its peak.

    Relative to the file's own peak because SPIRA normalises every file to
    peak 1 (prepared audio already is). None when the file is silent or has no
    noise-only stretch; see `noise_only_stretches` for the settings.
    """
    samples = np.asarray(samples)
    file_peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if file_peak == 0:
        return None
    stretches = noise_only_stretches(samples, sample_rate, detection)
    if not stretches:
        return None
    return max(float(np.max(np.abs(samples[start:stop]))) for start, stop in stretches) / file_peak


def calibrate_noise_bounds(
    recordings: Iterable[tuple[np.ndarray, int]], quantile: float = 0.0, detection: PauseDetection = PauseDetection()
) -> NoiseBounds:
    """Bounds from the per-file noise-only peaks of (samples, sample_rate) recordings.

    quantile 0 (the default) gives the plain min and max, as SPIRA measured
    them. One file sets each of those alone: a pause holding a cough or a
    door, or a file recorded close to the noise source, moves a bound on its
    own. quantile q > 0 takes the q and 1 - q quantiles of the per-file peaks
    instead (0.05: the 5th and 95th percentiles), which needs enough files for
    those quantiles to mean something. `detection` says how pauses are found
    (see `noise_only_stretches`). Recordings are read one at a time, so a
    generator over files on disk holds one file in memory.
    """
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must satisfy 0 <= quantile < 0.5, got {quantile}")
    peaks, skipped = [], 0
    for samples, sample_rate in recordings:
        peak = noise_only_peak(samples, sample_rate, detection)
        if peak is None:
            skipped += 1
        else:
            peaks.append(peak)
    if not peaks:
        raise ValueError(f"none of the {skipped} files has a noise-only stretch; cannot calibrate the noise bounds")
    low, high = np.quantile(peaks, [quantile, 1 - quantile])
    return NoiseBounds(float(low), float(high), files_used=len(peaks), files_skipped=skipped)


def format_amplitude(value: float) -> str:
    """Four significant digits: finer than the spread between files, short enough to paste."""
    return f"{value:.4g}"


def override_command(bounds: NoiseBounds) -> str:
    """The `dvc exp run` that trains with the bounds and tests with them (noisy test set)."""
    low, high = format_amplitude(bounds.min_amplitude), format_amplitude(bounds.max_amplitude)
    keys = ("augment.ward_noise", "noisy_test")
    return "dvc exp run " + " ".join(f"-S {key}.min_amplitude={low} -S {key}.max_amplitude={high}" for key in keys)


def read_recordings(paths: Iterable[Path]) -> Iterator[tuple[np.ndarray, int]]:
    for path in paths:
        samples, sample_rate = sf.read(path, dtype="float32")
        yield to_mono(samples), sample_rate
