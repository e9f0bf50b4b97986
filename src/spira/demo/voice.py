"""A speaker's voice: its traits, the glottal source and the vocal tract that filters it.

Sound events (voiced stretches through a formant target, band-limited noise bursts)
are rendered here at any sample rate; what a speaker says and when is decided in
`spira.demo.utterance`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

# Gains are defined so a signal has the same spectrum (per Hz) at every sample rate.
REFERENCE_RATE = 16000
F0_FRAME_RATE = 200
ROSENBERG_OPENING = 0.4

# (frequency Hz, bandwidth Hz) of F1-F5 for a reference (adult male) vocal tract; F5 is
# fixed and broad so the spectrum above F4 does not vanish.
FORMANTS_HZ: dict[str, tuple[tuple[float, float], ...]] = {
    "a": ((730, 90), (1250, 100), (2500, 140), (3500, 200), (4500, 400)),
    "e": ((450, 70), (1900, 100), (2550, 140), (3500, 200), (4500, 400)),
    "i": ((300, 60), (2250, 100), (2950, 160), (3600, 200), (4500, 400)),
    "o": ((480, 70), (900, 90), (2500, 140), (3400, 200), (4500, 400)),
    "u": ((320, 60), (800, 90), (2450, 140), (3300, 200), (4500, 400)),
    "murmur": ((260, 120), (1200, 250), (2500, 300), (3400, 300), (4500, 500)),
}


@dataclass(frozen=True)
class Voice:
    """Acoustic traits of one speaker; `severity` 0 is a healthy respiratory system."""

    sex: str
    age: int
    severity: float
    f0_hz: float
    formant_scale: float
    bandwidth_scale: float
    jitter: float  # std of the log period, per glottal cycle
    shimmer: float  # std of the log amplitude, per glottal cycle
    breathiness: float  # aspiration-noise to voicing ratio at the glottis
    closing_phase: float  # Rosenberg closing phase (fraction of a period); longer = softer
    syllables_per_second: float
    breath_group_seconds: float  # connected speech between two inhalations
    max_phonation_seconds: float  # sustained vowel on one breath
    inhale_level: float  # inhalation RMS relative to voiced RMS
    inhale_seconds: float
    hesitation_probability: float  # chance of a pause (no breath) after a word
    word_pause_seconds: float  # pause between counted numbers
    stress_depth: float
    breath_group_decay: float  # loudness lost by the end of a breath group
    level: float  # recording peak level


@dataclass(frozen=True)
class VoicedEvent:
    start: float
    end: float
    target: str
    amplitude: float
    ramp: float
    decay: float = 0.0


@dataclass(frozen=True)
class NoiseBurst:
    start: float
    end: float
    band_hz: tuple[float, float]
    level: float
    percussive: bool = False


def lerp(healthy: float, impaired: float, severity: float) -> float:
    return healthy + (impaired - healthy) * severity


def draw_voice(rng: np.random.Generator, severity: float) -> Voice:
    """Draw a voice; every draw happens whatever the severity, so streams stay aligned."""
    sex = "F" if rng.random() < 0.5 else "M"
    age = int(np.clip(round(rng.normal(48.0, 16.0)), 18, 90))
    ageing = (age - 18) / 72.0
    female = sex == "F"
    f0_female, f0_male = rng.normal(210.0, 14.0), rng.normal(118.0, 9.0)
    tract_female, tract_male = rng.uniform(1.10, 1.20), rng.uniform(0.94, 1.04)
    u = rng.uniform(size=19)
    return Voice(
        sex=sex,
        age=age,
        severity=severity,
        f0_hz=(f0_female - 30.0 * ageing) if female else (f0_male - 8.0 * ageing),
        formant_scale=(tract_female if female else tract_male) * (1.0 - 0.03 * ageing),
        # Each marker: the speaker's own healthy value, spread across speakers more widely
        # than the shift a typical (mild to moderate) patient's severity adds to it.
        bandwidth_scale=(0.85 + 0.4 * u[0]) + severity * (0.4 + 0.4 * u[0]),
        jitter=0.003 + 0.008 * u[1] + 0.004 * ageing + severity * (0.008 + 0.012 * u[2]),
        shimmer=0.03 + 0.06 * u[3] + 0.02 * ageing + severity * (0.06 + 0.08 * u[4]),
        breathiness=((0.04 + 0.2 * u[5]) * (1.3 if female else 1.0)
                     + severity * (0.2 + 0.3 * u[6])),
        closing_phase=0.10 + 0.1 * u[7] + severity * (0.06 + 0.08 * u[8]),
        syllables_per_second=(3.8 + 2.4 * u[9]) * (1.0 - 0.2 * severity),
        breath_group_seconds=lerp(2.0 + 2.5 * u[10], 0.9 + 0.7 * u[10], severity),
        max_phonation_seconds=lerp(8.0 + 17.0 * u[11], 2.5 + 2.5 * u[11], severity),
        inhale_level=0.01 + 0.12 * u[12] + severity * (0.12 + 0.15 * u[12]),
        inhale_seconds=lerp(0.2 + 0.35 * u[13], 0.45 + 0.35 * u[13], severity),
        hesitation_probability=lerp(0.15 * u[14], 0.15 + 0.2 * u[14], severity),
        word_pause_seconds=lerp(0.1 + 0.25 * u[15], 0.25 + 0.25 * u[15], severity),
        stress_depth=(0.2 + 0.3 * u[16]) * (1.0 - 0.5 * severity),
        breath_group_decay=0.2 * u[17] + severity * (0.1 + 0.2 * u[17]),
        level=(0.35 + 0.55 * u[18]) * (1.0 - 0.3 * severity),
    )


def rosenberg_flow(phase: np.ndarray, closing: float) -> np.ndarray:
    """Rosenberg glottal flow over one period (phase in [0, 1)): open, close, closed."""
    flow = np.zeros_like(phase)
    opening = phase < ROSENBERG_OPENING
    flow[opening] = 0.5 * (1.0 - np.cos(np.pi * phase[opening] / ROSENBERG_OPENING))
    closing_mask = ~opening & (phase < ROSENBERG_OPENING + closing)
    flow[closing_mask] = np.cos(0.5 * np.pi * (phase[closing_mask] - ROSENBERG_OPENING) / closing)
    return flow


def glottal_source(rng: np.random.Generator, voice: Voice, f0_hz: np.ndarray, n_samples: int,
                   sample_rate: int) -> np.ndarray:
    """Flow-derivative pulses with jitter and shimmer plus pitch-synchronous aspiration."""
    frame_times = np.arange(len(f0_hz)) / F0_FRAME_RATE
    cycles_at_frames = np.concatenate(([0.0], np.cumsum(f0_hz[:-1]) / F0_FRAME_RATE))
    nominal_onsets = np.interp(np.arange(int(cycles_at_frames[-1]) + 1), cycles_at_frames,
                               frame_times)
    jitter = np.exp(voice.jitter * rng.standard_normal(len(nominal_onsets) - 1))
    periods = np.diff(nominal_onsets) * jitter
    onsets = np.concatenate(([0.0], np.cumsum(periods))) - rng.uniform(0.0, periods[0])
    boundaries = np.clip(np.ceil(onsets * sample_rate).astype(np.int64), 0, n_samples)
    samples_per_cycle = np.diff(boundaries)
    # Per-sample copies of per-cycle values (np.repeat is much faster than fancy indexing).
    time = np.arange(boundaries[-1]) / sample_rate
    cycle_onset = np.repeat(onsets[:-1], samples_per_cycle)
    phase = (time - cycle_onset) * np.repeat(1.0 / periods, samples_per_cycle)
    flow = rosenberg_flow(phase, voice.closing_phase)
    flow *= np.repeat(np.exp(voice.shimmer * rng.standard_normal(len(periods))), samples_per_cycle)
    # Scaled derivative: the same continuous-time spectrum whatever the sample rate.
    excitation = np.diff(flow, prepend=0.0) * (sample_rate / REFERENCE_RATE)
    # White noise scaled to a rate-independent density, gated by the open glottis.
    turbulence = rng.standard_normal(len(flow)) * math.sqrt(sample_rate / REFERENCE_RATE)
    voicing_rms = float(np.sqrt(np.mean(excitation**2)))
    aspiration = voice.breathiness * voicing_rms * turbulence * (0.3 + flow)
    source = np.zeros(n_samples)
    source[: len(flow)] = excitation + aspiration
    return source


def formant_sos(target: str, voice: Voice, sample_rate: int) -> np.ndarray:
    """Cascade of unit-DC-gain 2nd-order resonators (F1-F4 scaled by the speaker's tract);
    formants near Nyquist are left out."""
    sections = []
    for number, (frequency, bandwidth) in enumerate(FORMANTS_HZ[target]):
        frequency *= voice.formant_scale if number < 4 else 1.0
        if frequency >= 0.45 * sample_rate:
            continue
        radius = math.exp(-math.pi * bandwidth * voice.bandwidth_scale / sample_rate)
        a1 = -2.0 * radius * math.cos(2.0 * math.pi * frequency / sample_rate)
        a2 = radius * radius
        sections.append([1.0 + a1 + a2, 0.0, 0.0, 1.0, a1, a2])
    return np.array(sections)


def raised_cosine_envelope(n_samples: int, ramp_samples: int) -> np.ndarray:
    envelope = np.ones(n_samples)
    ramp = min(ramp_samples, n_samples // 2)
    if ramp > 0:
        rise = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        envelope[:ramp] = rise
        envelope[n_samples - ramp:] = rise[::-1]
    return envelope


def event_span(start_s: float, end_s: float, n_samples: int, sample_rate: int) -> tuple[int, int]:
    return int(start_s * sample_rate), min(n_samples, int(end_s * sample_rate))


def filter_segments(sos: np.ndarray, x: np.ndarray, spans: list[tuple[int, int]],
                    lead_in: int) -> list[np.ndarray]:
    """Filter several stretches of `x` with one call: each stretch is preceded by `lead_in`
    samples that absorb the filter's start-up (and the previous stretch's ringing)."""
    starts = [max(0, start - lead_in) for start, _ in spans]
    stretches = [x[a:stop] for a, (_, stop) in zip(starts, spans)]
    filtered = signal.sosfilt(sos, np.concatenate(stretches))
    pieces = []
    offset = 0
    for a, (start, stop) in zip(starts, spans):
        pieces.append(filtered[offset + start - a: offset + stop - a])
        offset += stop - a
    return pieces


def render_voiced(events: list[VoicedEvent], source: np.ndarray, voice: Voice,
                  sample_rate: int) -> tuple[np.ndarray, float]:
    """Filter the source through each event's vowel, overlap-add; returns (signal, RMS)."""
    n_samples = len(source)
    out = np.zeros(n_samples)
    envelope_sum = np.zeros(n_samples)
    lead_in = int(0.03 * sample_rate)
    for target in sorted({event.target for event in events}):
        chosen = [e for e in events if e.target == target]
        spans = [event_span(e.start, e.end, n_samples, sample_rate) for e in chosen]
        kept = [(e, span) for e, span in zip(chosen, spans) if span[1] - span[0] >= 8]
        if not kept:
            continue
        sos = formant_sos(target, voice, sample_rate)
        pieces = filter_segments(sos, source, [span for _, span in kept], lead_in)
        for (event, (start, stop)), piece in zip(kept, pieces):
            envelope = raised_cosine_envelope(stop - start, int(event.ramp * sample_rate))
            envelope *= event.amplitude * np.linspace(1.0, 1.0 - event.decay, stop - start)
            out[start:stop] += envelope * piece
            envelope_sum[start:stop] += envelope
    active = envelope_sum > 0.3
    rms = float(np.sqrt(np.mean(out[active] ** 2))) if active.any() else 1.0
    return out, rms


@functools.lru_cache(maxsize=256)
def bandpass_sos(low_hz: float, high_hz: float, sample_rate: int) -> np.ndarray | None:
    """2nd-order Butterworth band-pass, clipped below Nyquist; None if nothing is left."""
    high_hz = min(high_hz, 0.45 * sample_rate)
    if high_hz <= low_hz * 1.2:
        return None
    return signal.butter(2, [low_hz, high_hz], btype="bandpass", fs=sample_rate, output="sos")


def render_bursts(rng: np.random.Generator, bursts: list[NoiseBurst], n_samples: int,
                  sample_rate: int) -> np.ndarray:
    """Band-limited noise bursts (fricatives, plosive releases, inhalations), RMS = level."""
    out = np.zeros(n_samples)
    spans = [event_span(b.start, b.end, n_samples, sample_rate) for b in bursts]
    kept = [(b, span) for b, span in zip(bursts, spans) if span[1] - span[0] >= 8]
    white = rng.standard_normal(sum(stop - start for _, (start, stop) in kept))
    # Each burst gets its own stretch of one white-noise draw, then its band's filter.
    offsets = np.cumsum([0] + [stop - start for _, (start, stop) in kept])
    for band in sorted({b.band_hz for b, _ in kept}):
        sos = bandpass_sos(*band, sample_rate)
        if sos is None:
            continue
        chosen = [(i, b, span) for i, (b, span) in enumerate(kept) if b.band_hz == band]
        stretches = [(int(offsets[i]), int(offsets[i + 1])) for i, _, _ in chosen]
        pieces = filter_segments(sos, white, stretches, lead_in=0)
        for (_, burst, (start, stop)), noise in zip(chosen, pieces):
            if burst.percussive:
                shape = np.exp(-np.arange(stop - start) / (0.3 * (stop - start)))
            else:
                shape = np.hanning(stop - start)
            shaped = noise * shape
            out[start:stop] += burst.level * shaped / max(float(np.sqrt(np.mean(shaped**2))), 1e-12)
    return out
