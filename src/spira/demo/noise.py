"""The acoustic scenes around the speech: hospital wards, a room at home, the room's colour.

A ward is a fixed profile (monitors, mains hum, air flow, distant talkers); each
recording and each file of the noise set is a fresh realisation of one. A recording
made outside a ward gets the broadband room tone of a home instead. A recording
site is a room and a channel (microphone band, noise floor, usual sample rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import signal

from spira.demo.utterance import UTTERANCE_KINDS, render_speech
from spira.demo.voice import draw_voice, raised_cosine_envelope

# Ward air flow, hum and babble live below ~1.5 kHz: synthesise them cheaply at this rate.
WARD_LOW_BAND_RATE = 4000


@dataclass(frozen=True)
class WardProfile:
    """One hospital ward's acoustic scene; each recording is a fresh realisation."""

    monitor_hz: tuple[float, ...]
    monitor_period_seconds: tuple[float, ...]
    monitor_beep_seconds: tuple[float, ...]
    monitor_beeps_per_burst: tuple[int, ...]
    monitor_level: tuple[float, ...]
    mains_hz: float
    hum_level: float
    airflow_cutoff_hz: float
    airflow_level: float
    hiss_level: float
    babble_talkers: int
    babble_cutoff_hz: float
    babble_level: float


def draw_ward(rng: np.random.Generator) -> WardProfile:
    n_monitors = int(rng.integers(1, 4))
    return WardProfile(
        monitor_hz=tuple(rng.uniform(800.0, 3000.0, n_monitors)),
        monitor_period_seconds=tuple(rng.uniform(0.5, 2.0, n_monitors)),
        monitor_beep_seconds=tuple(rng.uniform(0.05, 0.2, n_monitors)),
        monitor_beeps_per_burst=tuple(int(k) for k in rng.choice([1, 1, 2, 3], n_monitors)),
        monitor_level=tuple(rng.uniform(0.3, 1.0, n_monitors)),
        mains_hz=60.0 if rng.random() < 0.8 else 50.0,
        hum_level=rng.uniform(0.05, 0.4),
        airflow_cutoff_hz=rng.uniform(200.0, 900.0),
        airflow_level=rng.uniform(0.3, 1.0),
        hiss_level=rng.uniform(0.02, 0.15),
        babble_talkers=int(rng.integers(2, 6)),
        babble_cutoff_hz=rng.uniform(600.0, 1400.0),
        babble_level=rng.uniform(0.1, 0.8),
    )


@dataclass(frozen=True)
class SiteProfile:
    """One recording site: its room (early reflections) and its microphones' channel."""

    reflections: int
    reflection_gain: float
    low_pass_hz: float  # band limit of the site's phones or microphones
    low_pass_mix: float
    high_pass_hz: float  # small phone microphones roll off the low end
    hiss: float  # the channel's electronic noise floor, relative to the speech peak
    preferred_rate: int  # the sample rate most of its files are recorded at


def draw_site(rng: np.random.Generator, sample_rates: tuple[int, ...]) -> SiteProfile:
    return SiteProfile(
        reflections=int(rng.integers(2, 7)),
        reflection_gain=rng.uniform(0.1, 0.4),
        low_pass_hz=rng.uniform(2500.0, 7000.0),
        low_pass_mix=rng.uniform(0.2, 0.7),
        high_pass_hz=rng.uniform(60.0, 300.0),
        hiss=rng.uniform(0.0005, 0.004),
        preferred_rate=int(sample_rates[int(rng.integers(len(sample_rates)))]),
    )


def site_channel(rng: np.random.Generator, site: SiteProfile, dry: np.ndarray, sample_rate: int) -> np.ndarray:
    """The site's room and channel around one recording (each recording varies a little around the site)."""
    wet = dry.copy()
    for _ in range(site.reflections):
        delay = max(1, int(rng.uniform(0.002, 0.025) * sample_rate))
        wet[delay:] += rng.uniform(-1.0, 1.0) * site.reflection_gain * dry[:-delay]
    cutoff = min(site.low_pass_hz * rng.uniform(0.9, 1.1), 0.45 * sample_rate)
    pole = math.exp(-2.0 * math.pi * cutoff / sample_rate)
    low_passed = signal.lfilter([1.0 - pole], [1.0, -pole], wet)
    coloured = (1.0 - site.low_pass_mix) * wet + site.low_pass_mix * low_passed
    high_pass = signal.butter(1, site.high_pass_hz * rng.uniform(0.9, 1.1), btype="highpass", fs=sample_rate, output="sos")
    coloured = signal.sosfilt(high_pass, coloured)
    peak = float(np.max(np.abs(coloured))) or 1.0
    return coloured + site.hiss * peak * rng.standard_normal(len(coloured))


def unit_rms(x: np.ndarray) -> np.ndarray:
    return x / max(float(np.sqrt(np.mean(x**2))), 1e-12)


def monitor_beeps(rng: np.random.Generator, ward: WardProfile, n_samples: int,
                  sample_rate: int) -> np.ndarray:
    """Bedside monitors: short tones (with a 2nd harmonic) in regular single/multi beeps."""
    out = np.zeros(n_samples)
    for hz, period, beep_seconds, per_burst, level in zip(
            ward.monitor_hz, ward.monitor_period_seconds, ward.monitor_beep_seconds,
            ward.monitor_beeps_per_burst, ward.monitor_level):
        t = np.arange(int(beep_seconds * sample_rate)) / sample_rate
        tone = np.sin(2 * np.pi * hz * t)
        if 2 * hz < 0.45 * sample_rate:
            tone += 0.3 * np.sin(2 * np.pi * 2 * hz * t)
        tone *= level * raised_cosine_envelope(len(t), int(0.005 * sample_rate)) / 1.3
        onset = rng.uniform(0.0, period)
        while onset < n_samples / sample_rate:
            for k in range(per_burst):
                start = int((onset + 1.6 * k * beep_seconds) * sample_rate)
                stop = min(n_samples, start + len(tone))
                if stop > start:
                    out[start:stop] += tone[: stop - start]
            onset += period * rng.uniform(0.98, 1.02)
    return out


def ward_low_band(rng: np.random.Generator, ward: WardProfile, seconds: float) -> np.ndarray:
    """Air flow (with ventilator cycles), mains hum and distant babble at WARD_LOW_BAND_RATE."""
    rate = WARD_LOW_BAND_RATE
    n_samples = int(math.ceil(seconds * rate)) + 1
    t = np.arange(n_samples) / rate
    airflow_sos = signal.butter(2, ward.airflow_cutoff_hz, fs=rate, output="sos")
    airflow = unit_rms(signal.sosfilt(airflow_sos, rng.standard_normal(n_samples)))
    ventilator_hz = rng.uniform(0.2, 0.35)
    airflow *= 1.0 + 0.3 * np.sin(2 * np.pi * ventilator_hz * t + rng.uniform(0, 2 * np.pi))
    hum = np.zeros(n_samples)
    for harmonic in range(1, 5):
        hum += rng.uniform(0.2, 1.0) / harmonic * np.sin(
            2 * np.pi * harmonic * ward.mains_hz * t + rng.uniform(0, 2 * np.pi))
    babble = np.zeros(n_samples)
    for _ in range(ward.babble_talkers):
        talker = draw_voice(rng, severity=0.0)
        kind = UTTERANCE_KINDS[1 + int(rng.integers(2))]
        speech = render_speech(rng, talker, kind, n_samples, rate)
        babble += rng.uniform(0.5, 1.0) * unit_rms(speech)
    babble_sos = signal.butter(4, ward.babble_cutoff_hz, fs=rate, output="sos")
    babble = unit_rms(signal.sosfilt(babble_sos, babble))
    return (ward.airflow_level * airflow + ward.hum_level * unit_rms(hum)
            + ward.babble_level * babble)


def ward_noise(rng: np.random.Generator, ward: WardProfile, n_samples: int,
               sample_rate: int) -> np.ndarray:
    """One realisation of a ward's noise, peak 1."""
    low_band = ward_low_band(rng, ward, n_samples / sample_rate)
    common = math.gcd(sample_rate, WARD_LOW_BAND_RATE)
    noise = signal.resample_poly(low_band, sample_rate // common, WARD_LOW_BAND_RATE // common)
    noise = np.pad(noise[:n_samples], (0, max(0, n_samples - len(noise))))
    noise += ward.hiss_level * rng.standard_normal(n_samples)
    noise += monitor_beeps(rng, ward, n_samples, sample_rate)
    return noise / float(np.max(np.abs(noise)))


def home_background(rng: np.random.Generator, n_samples: int, sample_rate: int) -> np.ndarray:
    """A room at home: white plus low-passed (pinkish) noise, peak 1."""
    white = rng.standard_normal(n_samples)
    pole = math.exp(-2.0 * math.pi * rng.uniform(300.0, 1500.0) / sample_rate)
    pinkish = unit_rms(signal.lfilter([1.0 - pole], [1.0, -pole], white))
    noise = rng.uniform(0.2, 0.6) * white + pinkish
    return noise / float(np.max(np.abs(noise)))

