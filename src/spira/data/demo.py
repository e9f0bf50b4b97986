"""Seeded generator of a synthetic SPIRA-layout cohort (no real voices, no downloads).

Every recording written here is synthetic speech-like sound made with numpy/scipy. It
exists so the pipeline can be built, tested and demonstrated without SPIRA's private
data. What is modelled:

- Voice source: Rosenberg glottal pulses at a per-speaker F0 (by sex and age) with slow
  drift, phrase declination and accents, cycle-to-cycle jitter (period) and shimmer
  (amplitude), plus pitch-synchronous aspiration noise (breathiness).
- Vocal tract: a cascade of formant resonators per vowel target (a, e, i, o, u and a
  nasal murmur; F1-F4 scaled per speaker for vocal-tract length by sex and age, plus a
  fixed broad F5), cross-faded from syllable to syllable; fricative and plosive noise
  bursts for consonants.
- Utterances: a sustained vowel "aaa", the SPIRA sentence ("o amor ao próximo ...") and
  counting ("um, dois, três ..."), with syllable-rate prosody, breath groups, pauses and
  inhalations, then a mild room colouring per channel.
- Respiratory insufficiency (patients, scaled by `marker_strength`): shorter breath
  groups and phonations, audible inhalations, hesitation pauses, slower speech, more
  breathiness, jitter and shimmer, softer glottal closure, wider formant bandwidths,
  loudness decaying within a breath group and a flatter dynamic profile. Patients are
  at least moderately affected (severity 0.6-1 before `marker_strength`), so ~80
  training speakers teach the markers in a few epochs; speakers still vary individually.
- Hospital wards: monitor beeps, ventilation air flow with mains hum and distant
  low-passed babble. The same generator writes the noise set and (with
  `ward_noise_in_patients`) the background of patient recordings, while controls get
  the quieter, broadband room tone of a phone at home. That reproduces SPIRA's
  confound: the background alone separates the classes.

Output is byte-deterministic for a given config. Random streams are keyed by
(seed, purpose, speaker, utterance), so adding speakers leaves existing voices unchanged.
"""

from __future__ import annotations

import csv
import functools
import itertools
import math
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from spira.data.audio import MIN_FILES_FOR_WORKERS, write_float_wav
from spira.data.splits import split_speakers

UTTERANCE_KINDS = ("sustained_vowel", "sentence", "counting")
SPLIT_NAMES = ("train", "eval", "test")
METADATA_COLUMNS = ("file_path", "class", "speaker_id", "sex", "age")

# SPIRA's measured peak amplitude range of ward noise in patient files (speech peak ~1).
NOISE_PEAK_RANGE = (0.033474047, 0.19233719)
# Controls were recorded elsewhere (at home, on a phone): a broadband room tone at a
# phone's noise floor, below the ward noise. Louder, it would mask the ward clip the
# noisy test adds to controls, and a model trained on raw audio would no longer show
# SPIRA's collapse on that test.
HOME_BACKGROUND_PEAK_RANGE = (0.01, 0.03)
N_WARDS = 6
NOISE_SET_SAMPLE_RATE = 16000
# Ward air flow, hum and babble live below ~1.5 kHz: synthesise them cheaply at this rate.
WARD_LOW_BAND_RATE = 4000
# Gains are defined so a signal has the same spectrum (per Hz) at every sample rate.
REFERENCE_RATE = 16000
F0_FRAME_RATE = 200
ROSENBERG_OPENING = 0.4
SYLLABLE_CROSSFADE_S = 0.025

# Random-stream purposes: each gets its own key so draws of one never shift another.
STREAM_CLASS, STREAM_VOICE, STREAM_FILE, STREAM_SYNTH = 1, 2, 3, 4
STREAM_IDS, STREAM_SPLIT, STREAM_WARD, STREAM_NOISE_FILE = 5, 6, 7, 8

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

# Syllables as consonant letters + one vowel; "'" marks stress, "-" joins a word's syllables.
# x = [ʃ], j = [ʒ], c = [tʃ]; codas are dropped. Brazilian-Portuguese reduced vowels.
SENTENCE = (
    "u a-'mo 'a-u 'pro-si-mu a-'ju-da a e-fre-'ta 'e-sa 'fa-zi ko a 'fo-sa ki a 'je-ci pre-'si-za"
)
# Word indices after which a speaker naturally breathes ("próximo", "fase"); every
# speaker also breathes at the end of the sentence before saying it again.
SENTENCE_BREATH_POINTS = frozenset({3, 8})
COUNTING = (
    "'u 'do-i 'tre 'kwa-tru 'si-ku 'se-i 'se-ci 'o-i-tu 'no-vi 'de "
    "'o-zi 'do-zi 'tre-zi ka-'to-zi 'ki-zi"
)

FRICATIVE_BANDS_HZ = {"s": (3800, 8000), "z": (3800, 8000), "x": (2200, 5500),
                      "j": (2200, 5500), "f": (1200, 6500), "v": (1200, 6500)}
FRICATIVE_LEVELS = {"s": 0.30, "z": 0.20, "x": 0.25, "j": 0.18, "f": 0.12, "v": 0.08}
PLOSIVE_BANDS_HZ = {"p": (500, 3000), "b": (500, 3000), "t": (2500, 6500),
                    "d": (2500, 6500), "k": (1500, 4000), "g": (1500, 4000), "c": (2500, 6500)}
NASALS = frozenset("mn")
LIQUIDS = frozenset("lr")
VOICED_OBSTRUENTS = frozenset("bdgvzj")
INHALATION_BAND_HZ = (350, 3200)


@dataclass(frozen=True)
class DemoCohortConfig:
    """What to generate; plain ints/floats/lists (e.g. from YAML) are accepted."""

    n_speakers: int = 120
    utterances_per_speaker: int = 3
    min_seconds: float = 4.0
    max_seconds: float = 12.0
    sample_rates: tuple[int, ...] = (16000, 22050, 44100, 48000)
    stereo_fraction: float = 0.2
    flac_fraction: float = 0.3
    marker_strength: float = 1.0
    ward_noise_in_patients: bool = True
    n_noise_files: int = 12
    noise_seconds: float = 15.0
    seed: int = 0
    # Processes that synthesise recordings; the output is identical for any value.
    num_workers: int = 2

    def __post_init__(self) -> None:
        # Frozen dataclass: normalise YAML values (lists, ints for floats) in place.
        coerced = {
            "n_speakers": int(self.n_speakers),
            "utterances_per_speaker": int(self.utterances_per_speaker),
            "min_seconds": float(self.min_seconds),
            "max_seconds": float(self.max_seconds),
            "sample_rates": tuple(int(rate) for rate in self.sample_rates),
            "stereo_fraction": float(self.stereo_fraction),
            "flac_fraction": float(self.flac_fraction),
            "marker_strength": float(self.marker_strength),
            "ward_noise_in_patients": bool(self.ward_noise_in_patients),
            "n_noise_files": int(self.n_noise_files),
            "noise_seconds": float(self.noise_seconds),
            "seed": int(self.seed),
            "num_workers": int(self.num_workers),
        }
        for name, value in coerced.items():
            object.__setattr__(self, name, value)
        if self.n_speakers < 6:
            raise ValueError("n_speakers must be >= 6 (three speakers per class and split)")
        if self.utterances_per_speaker < 1:
            raise ValueError("utterances_per_speaker must be >= 1")
        if not 1.0 <= self.min_seconds <= self.max_seconds:
            raise ValueError("need 1 <= min_seconds <= max_seconds")
        if not self.sample_rates or min(self.sample_rates) < 8000:
            raise ValueError("sample_rates must be non-empty and each >= 8000 Hz")
        for name in ("stereo_fraction", "flac_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.marker_strength < 0:
            raise ValueError("marker_strength must be >= 0")
        if self.n_noise_files < 0 or self.noise_seconds <= 0:
            raise ValueError("need n_noise_files >= 0 and noise_seconds > 0")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


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
class Speaker:
    index: int
    speaker_id: str
    is_patient: bool
    ward: int
    voice: Voice


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


@dataclass(frozen=True)
class Recording:
    """Everything needed to synthesise and write one speech file."""

    record_id: str
    speaker: Speaker
    utterance: int
    kind: str
    seconds: float
    sample_rate: int
    channels: int
    container: str
    subtype: str

    @property
    def file_path(self) -> str:
        return f"audio/{self.record_id}.{self.container}"


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


@dataclass
class Timeline:
    """What a speaker does when, in seconds; rendered to samples at any rate."""

    voiced: list[VoicedEvent] = field(default_factory=list)
    bursts: list[NoiseBurst] = field(default_factory=list)
    breath_groups: list[tuple[float, float]] = field(default_factory=list)
    accents: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Syllable:
    consonant: str
    vowel: str
    stressed: bool
    glide: bool  # vowel-only syllable right after a vowel: second half of a diphthong


def parse_words(text: str) -> tuple[tuple[Syllable, ...], ...]:
    words = []
    for word in text.split():
        syllables = []
        for position, token in enumerate(word.split("-")):
            body = token.lstrip("'")
            syllables.append(Syllable(consonant=body[:-1], vowel=body[-1],
                                      stressed=token.startswith("'"),
                                      glide=position > 0 and len(body) == 1))
        words.append(tuple(syllables))
    return tuple(words)


SENTENCE_WORDS = parse_words(SENTENCE)
COUNTING_WORDS = parse_words(COUNTING)


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
        bandwidth_scale=1.0 + severity * (0.6 + 0.6 * u[0]),
        jitter=0.003 + 0.004 * u[1] + 0.004 * ageing + severity * (0.015 + 0.015 * u[2]),
        shimmer=0.03 + 0.03 * u[3] + 0.02 * ageing + severity * (0.08 + 0.1 * u[4]),
        breathiness=((0.05 + 0.12 * u[5]) * (1.3 if female else 1.0)
                     + severity * (0.35 + 0.35 * u[6])),
        closing_phase=0.10 + 0.06 * u[7] + severity * (0.10 + 0.10 * u[8]),
        syllables_per_second=(4.5 + 1.5 * u[9]) * (1.0 - 0.2 * severity),
        breath_group_seconds=lerp(2.8 + 1.7 * u[10], 0.9 + 0.7 * u[10], severity),
        max_phonation_seconds=lerp(12.0 + 13.0 * u[11], 2.5 + 2.5 * u[11], severity),
        inhale_level=lerp(0.01 + 0.03 * u[12], 0.2 + 0.2 * u[12], severity),
        inhale_seconds=lerp(0.25 + 0.2 * u[13], 0.45 + 0.35 * u[13], severity),
        hesitation_probability=lerp(0.08 * u[14], 0.15 + 0.2 * u[14], severity),
        word_pause_seconds=lerp(0.12 + 0.15 * u[15], 0.25 + 0.25 * u[15], severity),
        stress_depth=(0.25 + 0.2 * u[16]) * (1.0 - 0.5 * severity),
        breath_group_decay=0.15 * u[17] + severity * (0.15 + 0.25 * u[17]),
        level=(0.35 + 0.55 * u[18]) * (1.0 - 0.3 * severity),
    )


def draw_speaker(seed: int, index: int, marker_strength: float) -> Speaker:
    # Classes alternate within pairs of speakers, in seeded order: balanced and stable.
    patient_first = np.random.default_rng([seed, STREAM_CLASS, index // 2]).random() < 0.5
    is_patient = (index % 2 == 0) == patient_first
    rng = np.random.default_rng([seed, STREAM_VOICE, index])
    ward = int(rng.integers(N_WARDS))
    # Patients are at least moderately affected: the markers must be learnable
    # from ~80 training speakers in a few epochs, as SPIRA's real ones were.
    raw_severity = rng.uniform(0.6, 1.0)
    severity = raw_severity * marker_strength if is_patient else 0.0
    return Speaker(index=index, speaker_id=f"spk-{index + 1:04d}", is_patient=is_patient,
                   ward=ward, voice=draw_voice(rng, severity))


def draw_ward(seed: int, ward: int) -> WardProfile:
    rng = np.random.default_rng([seed, STREAM_WARD, ward])
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


# ---------------------------------------------------------------- timelines


def shortness(seconds: float) -> float:
    """Scale for silences and breaths, so that even a 1 s file is mostly voice."""
    return min(1.0, seconds / 4.0)


def inhalation(rng: np.random.Generator, voice: Voice, start: float, squeeze: float) -> NoiseBurst:
    seconds = voice.inhale_seconds * rng.uniform(0.8, 1.2) * squeeze
    return NoiseBurst(start, start + seconds, INHALATION_BAND_HZ,
                      voice.inhale_level * rng.uniform(0.8, 1.2))


def sustained_vowel_timeline(rng: np.random.Generator, voice: Voice, seconds: float) -> Timeline:
    """One long "aaa"; speakers who run out of air stop, inhale and go on."""
    timeline = Timeline()
    squeeze = shortness(seconds)
    t = rng.uniform(0.15, 0.5) * squeeze
    end = seconds - rng.uniform(0.2, 0.5) * squeeze
    while end - t > 0.6 * squeeze:
        breath = inhalation(rng, voice, t, squeeze)
        timeline.bursts.append(breath)
        t = breath.end + rng.uniform(0.05, 0.15) * squeeze
        phonation = min(end - t, voice.max_phonation_seconds * rng.uniform(0.85, 1.15))
        if phonation < 0.3 * squeeze:
            break
        decay = voice.breath_group_decay * min(1.0, phonation / voice.max_phonation_seconds)
        timeline.voiced.append(VoicedEvent(t, t + phonation, "a", rng.uniform(0.9, 1.1),
                                           ramp=rng.uniform(0.06, 0.15), decay=decay))
        timeline.breath_groups.append((t, t + phonation))
        t += phonation + rng.uniform(0.1, 0.3)
    return timeline


def syllable_events(rng: np.random.Generator, syllable: Syllable, start: float,
                    seconds: float, amplitude: float) -> tuple[list[VoicedEvent], list[NoiseBurst]]:
    """A consonant (burst, closure or murmur) followed by its vowel, cross-faded in."""
    voiced: list[VoicedEvent] = []
    bursts: list[NoiseBurst] = []
    fade = SYLLABLE_CROSSFADE_S
    onset = syllable.consonant[:1]
    consonant_seconds = 0.0
    if onset in FRICATIVE_BANDS_HZ:
        consonant_seconds = min(0.5 * seconds, rng.uniform(0.06, 0.11))
        bursts.append(NoiseBurst(start, start + consonant_seconds, FRICATIVE_BANDS_HZ[onset],
                                 FRICATIVE_LEVELS[onset] * amplitude))
    elif onset in PLOSIVE_BANDS_HZ:
        closure = rng.uniform(0.03, 0.055)
        release = rng.uniform(0.01, 0.02)
        bursts.append(NoiseBurst(start + closure, start + closure + release,
                                 PLOSIVE_BANDS_HZ[onset], 0.4 * amplitude, percussive=True))
        consonant_seconds = closure + release
        if onset == "c":  # [tʃ]: the release turns into a [ʃ]
            frication = rng.uniform(0.05, 0.08)
            bursts.append(NoiseBurst(start + consonant_seconds,
                                     start + consonant_seconds + frication,
                                     FRICATIVE_BANDS_HZ["x"], FRICATIVE_LEVELS["x"] * amplitude))
            consonant_seconds += frication
        consonant_seconds = min(0.5 * seconds, consonant_seconds)
    elif onset in NASALS or onset in LIQUIDS:
        consonant_seconds = min(0.4 * seconds, rng.uniform(0.04, 0.08))
        voiced.append(VoicedEvent(start, start + consonant_seconds + fade, "murmur",
                                  (0.45 if onset in NASALS else 0.6) * amplitude, fade))
    if onset in VOICED_OBSTRUENTS:  # voicing bar under the noise
        voiced.append(VoicedEvent(start, start + consonant_seconds + fade, "murmur",
                                  0.2 * amplitude, fade))
    voiced.append(VoicedEvent(start + consonant_seconds, start + seconds + fade,
                              syllable.vowel, amplitude, fade))
    return voiced, bursts


def connected_speech_timeline(rng: np.random.Generator, voice: Voice, seconds: float,
                              words: tuple[tuple[Syllable, ...], ...],
                              breath_points: frozenset[int], counting: bool) -> Timeline:
    """Words in breath groups; a breath when the group's air runs out or at a phrase end."""
    timeline = Timeline()
    squeeze = shortness(seconds)
    rate = voice.syllables_per_second * rng.uniform(0.92, 1.08)
    t = rng.uniform(0.15, 0.5) * squeeze
    end = seconds - rng.uniform(0.15, 0.4) * squeeze
    breath = inhalation(rng, voice, t, squeeze)
    timeline.bursts.append(breath)
    t = breath.end + rng.uniform(0.05, 0.12) * squeeze
    group_start = t
    budget = voice.breath_group_seconds * rng.uniform(0.8, 1.2)
    for position in itertools.count():
        word_index = position % len(words)
        word = words[word_index]
        durations = [
            (0.5 if syllable.glide else 1.0) * (1.35 if syllable.stressed else 1.0)
            * rng.uniform(0.8, 1.2) / rate
            for syllable in word
        ]
        # The first word is always said (cut at the file's end if need be).
        if position > 0 and t + sum(durations) > end:
            break
        for syllable, duration in zip(word, durations):
            # Running out of air: loudness falls along the breath group.
            loudness = 1.0 - voice.breath_group_decay * min(1.0, (t - group_start) / budget)
            stress = (1.0 + voice.stress_depth if syllable.stressed
                      else 1.0 - 0.5 * voice.stress_depth)
            amplitude = loudness * stress * math.exp(0.08 * rng.standard_normal())
            voiced, bursts = syllable_events(rng, syllable, t, duration, amplitude)
            timeline.voiced.extend(voiced)
            timeline.bursts.extend(bursts)
            if syllable.stressed:
                timeline.accents.append(t + 0.5 * duration)
            t += duration
        elapsed = t - group_start
        at_phrase_end = word_index in breath_points and elapsed > 0.5 * budget
        if elapsed >= budget or at_phrase_end or word_index == len(words) - 1:
            timeline.breath_groups.append((group_start, t))
            breath = inhalation(rng, voice, t + rng.uniform(0.08, 0.2), 1.0)
            timeline.bursts.append(breath)
            t = breath.end + rng.uniform(0.05, 0.12)
            group_start = t
            budget = voice.breath_group_seconds * rng.uniform(0.8, 1.2)
        elif counting:
            t += voice.word_pause_seconds * rng.uniform(0.7, 1.3)
        elif rng.random() < voice.hesitation_probability:
            t += rng.uniform(0.12, 0.35)
    if t > group_start:
        timeline.breath_groups.append((group_start, t))
    return timeline


def utterance_timeline(rng: np.random.Generator, voice: Voice, kind: str,
                       seconds: float) -> Timeline:
    if kind == "sustained_vowel":
        return sustained_vowel_timeline(rng, voice, seconds)
    if kind == "sentence":
        return connected_speech_timeline(rng, voice, seconds, SENTENCE_WORDS,
                                         SENTENCE_BREATH_POINTS, counting=False)
    if kind == "counting":
        return connected_speech_timeline(rng, voice, seconds, COUNTING_WORDS,
                                         frozenset(range(len(COUNTING_WORDS))), counting=True)
    raise ValueError(f"unknown utterance kind {kind!r}")


# ---------------------------------------------------------------- rendering


def f0_contour(rng: np.random.Generator, voice: Voice, timeline: Timeline, kind: str,
               seconds: float) -> np.ndarray:
    """F0 in Hz at F0_FRAME_RATE: drift, declination per breath group, accents, tremor."""
    n_frames = int((seconds + 0.5) * F0_FRAME_RATE)
    t = np.arange(n_frames) / F0_FRAME_RATE
    relative = np.zeros(n_frames)
    for _ in range(3):
        relative += rng.uniform(0.004, 0.012) * np.sin(2 * np.pi * rng.uniform(0.1, 1.0) * t
                                                       + rng.uniform(0, 2 * np.pi))
    intonation = (0.02 if kind == "sustained_vowel" else 0.10) * (1.0 - 0.4 * voice.severity)
    for start, end in timeline.breath_groups:
        inside = (t >= start) & (t < end)
        relative[inside] += intonation * np.linspace(0.6, -0.4, int(inside.sum()))
    for centre in timeline.accents:
        relative += 0.06 * (1.0 - 0.4 * voice.severity) * np.exp(-(((t - centre) / 0.08) ** 2))
    tremor = 0.003 + 0.01 * voice.severity
    relative += tremor * np.sin(2 * np.pi * rng.uniform(4.0, 7.0) * t)
    return voice.f0_hz * rng.uniform(0.95, 1.05) * (1.0 + relative)


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


def render_speech(rng: np.random.Generator, voice: Voice, kind: str, n_samples: int,
                  sample_rate: int) -> np.ndarray:
    """Dry (no room, no background) mono speech of one utterance."""
    seconds = n_samples / sample_rate
    timeline = utterance_timeline(rng, voice, kind, seconds)
    f0_hz = f0_contour(rng, voice, timeline, kind, seconds)
    source = glottal_source(rng, voice, f0_hz, n_samples, sample_rate)
    voiced, voiced_rms = render_voiced(timeline.voiced, source, voice, sample_rate)
    return voiced + voiced_rms * render_bursts(rng, timeline.bursts, n_samples, sample_rate)


def colour_room(rng: np.random.Generator, dry: np.ndarray, sample_rate: int) -> np.ndarray:
    """A few early reflections and a gentle high-frequency roll-off (room and microphone)."""
    wet = dry.copy()
    for _ in range(int(rng.integers(3, 6))):
        delay = max(1, int(rng.uniform(0.002, 0.025) * sample_rate))
        wet[delay:] += rng.uniform(-0.3, 0.3) * dry[:-delay]
    pole = math.exp(-2.0 * math.pi * rng.uniform(2000.0, 6000.0) / sample_rate)
    low_passed = signal.lfilter([1.0 - pole], [1.0, -pole], wet)
    mix = rng.uniform(0.1, 0.5)
    return (1.0 - mix) * wet + mix * low_passed


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


def synthesise_recording(recording: Recording, config: DemoCohortConfig,
                         wards: tuple[WardProfile, ...]) -> np.ndarray:
    """The samples of one file, shape (frames,) or (frames, channels), peak = speaker level."""
    speaker = recording.speaker
    rng = np.random.default_rng([config.seed, STREAM_SYNTH, speaker.index, recording.utterance])
    sample_rate = recording.sample_rate
    n_samples = int(round(recording.seconds * sample_rate))
    dry = render_speech(rng, speaker.voice, recording.kind, n_samples, sample_rate)
    channels = [colour_room(rng, dry, sample_rate) for _ in range(recording.channels)]
    speech_peak = max(float(np.max(np.abs(channel))) for channel in channels)
    if speaker.is_patient and config.ward_noise_in_patients:
        background = ward_noise(rng, wards[speaker.ward], n_samples, sample_rate)
        background *= rng.uniform(*NOISE_PEAK_RANGE) * speech_peak
    else:
        background = home_background(rng, n_samples, sample_rate)
        background *= rng.uniform(*HOME_BACKGROUND_PEAK_RANGE) * speech_peak
    mixed = np.stack([channel + rng.uniform(0.85, 1.0) * background for channel in channels],
                     axis=1)
    mixed *= speaker.voice.level * rng.uniform(0.9, 1.1) / float(np.max(np.abs(mixed)))
    mixed = np.clip(mixed, -0.99, 0.99)
    return mixed[:, 0] if recording.channels == 1 else mixed


# ---------------------------------------------------------------- cohort layout


def plan_recordings(config: DemoCohortConfig, speakers: list[Speaker]) -> list[Recording]:
    """Format, rate, channels and duration per file; ids numbered in a shuffled order."""
    total = len(speakers) * config.utterances_per_speaker
    id_order = np.random.default_rng([config.seed, STREAM_IDS]).permutation(total)
    width = max(4, len(str(total)))
    recordings = []
    for speaker, utterance in itertools.product(speakers, range(config.utterances_per_speaker)):
        rng = np.random.default_rng([config.seed, STREAM_FILE, speaker.index, utterance])
        seconds = round(rng.uniform(config.min_seconds, config.max_seconds), 3)
        sample_rate = config.sample_rates[int(rng.integers(len(config.sample_rates)))]
        channels = 2 if rng.random() < config.stereo_fraction else 1
        container = "flac" if rng.random() < config.flac_fraction else "wav"
        subtype_draw = rng.random()
        if container == "flac":
            subtype = "PCM_24" if subtype_draw < 0.2 else "PCM_16"
        else:
            subtype = ("PCM_24" if subtype_draw < 0.1
                       else "FLOAT" if subtype_draw < 0.2 else "PCM_16")
        record_number = int(id_order[len(recordings)]) + 1
        recordings.append(Recording(
            record_id=f"rec_{record_number:0{width}d}", speaker=speaker, utterance=utterance,
            kind=UTTERANCE_KINDS[utterance % len(UTTERANCE_KINDS)], seconds=seconds,
            sample_rate=sample_rate, channels=channels, container=container, subtype=subtype))
    return recordings


def split_demo_speakers(config: DemoCohortConfig, speakers: list[Speaker]) -> dict[str, str]:
    """Speaker-disjoint, class-stratified 70/15/15 split: speaker_id -> SPIRA split name."""
    labels = {s.speaker_id: int(s.is_patient) for s in speakers}
    assignment = split_speakers(labels, {"train": 0.70, "val": 0.15, "test": 0.15}, seed=config.seed + STREAM_SPLIT)
    return {speaker: "eval" if split == "val" else split for speaker, split in assignment.items()}


def write_audio(path: Path, samples: np.ndarray, sample_rate: int, subtype: str) -> None:
    if subtype == "FLOAT":
        write_float_wav(path, samples, sample_rate)
    else:
        sf.write(path, samples, sample_rate, subtype=subtype,
                 format="FLAC" if path.suffix == ".flac" else "WAV")


def write_csv(path: Path, header: tuple[str, ...] | list[str], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def remove_stale_outputs(out_dir: Path) -> None:
    """Drop files a previous (larger or differently formatted) run left behind."""
    for pattern in ("audio/rec_*.wav", "audio/rec_*.flac", "noise/ward_*.wav"):
        for path in out_dir.glob(pattern):
            path.unlink()


def synthesise_and_write(recording: Recording, config: DemoCohortConfig,
                         wards: tuple[WardProfile, ...], out_dir: Path) -> None:
    samples = synthesise_recording(recording, config, wards)
    write_audio(out_dir / recording.file_path, samples, recording.sample_rate, recording.subtype)


def generate_demo_cohort(out_dir: Path, config: DemoCohortConfig) -> dict:
    """Write the synthetic cohort under `out_dir`; returns counts. Deterministic per config.

    Layout: audio/rec_NNNN.{wav,flac}; metadata_{train,eval,test}.csv with columns
    file_path,class,speaker_id,sex,age; noise/ward_NNN.wav listed in noise_data.csv
    (column path_wav). Paths in the CSVs are relative to `out_dir`.
    """
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    (out_dir / "noise").mkdir(parents=True, exist_ok=True)
    remove_stale_outputs(out_dir)

    speakers = [draw_speaker(config.seed, index, config.marker_strength)
                for index in range(config.n_speakers)]
    wards = tuple(draw_ward(config.seed, ward) for ward in range(N_WARDS))
    recordings = plan_recordings(config, speakers)
    split_of = split_demo_speakers(config, speakers)

    write_recording = functools.partial(synthesise_and_write, config=config, wards=wards,
                                        out_dir=out_dir)
    if config.num_workers > 0 and len(recordings) >= MIN_FILES_FOR_WORKERS:
        # spawn, not fork: the parent may hold torch/OpenMP threads.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(config.num_workers, mp_context=context) as pool:
            list(pool.map(write_recording, recordings, chunksize=8))
    else:
        for recording in recordings:
            write_recording(recording)

    rows: dict[str, list[tuple]] = {name: [] for name in SPLIT_NAMES}
    for recording in recordings:
        speaker = recording.speaker
        rows[split_of[speaker.speaker_id]].append(
            (recording.file_path, int(speaker.is_patient), speaker.speaker_id,
             speaker.voice.sex, speaker.voice.age))
    for name in SPLIT_NAMES:
        write_csv(out_dir / f"metadata_{name}.csv", METADATA_COLUMNS, sorted(rows[name]))

    noise_paths = []
    n_noise_samples = int(round(config.noise_seconds * NOISE_SET_SAMPLE_RATE))
    for number in range(1, config.n_noise_files + 1):
        rng = np.random.default_rng([config.seed, STREAM_NOISE_FILE, number])
        noise = ward_noise(rng, wards[(number - 1) % N_WARDS], n_noise_samples,
                           NOISE_SET_SAMPLE_RATE)
        path = f"noise/ward_{number:03d}.wav"
        write_audio(out_dir / path, rng.uniform(0.3, 0.9) * noise, NOISE_SET_SAMPLE_RATE, "PCM_16")
        noise_paths.append((path,))
    write_csv(out_dir / "noise_data.csv", ["path_wav"], noise_paths)

    return {
        "speakers": len(speakers),
        "patients": sum(s.is_patient for s in speakers),
        "controls": sum(not s.is_patient for s in speakers),
        "recordings": len(recordings),
        "recordings_per_split": {name: len(rows[name]) for name in SPLIT_NAMES},
        "speakers_per_split": {name: sum(split == name for split in split_of.values())
                               for name in SPLIT_NAMES},
        "wav": sum(r.container == "wav" for r in recordings),
        "flac": sum(r.container == "flac" for r in recordings),
        "stereo": sum(r.channels == 2 for r in recordings),
        "sample_rates": {str(rate): sum(r.sample_rate == rate for r in recordings)
                         for rate in config.sample_rates},
        "audio_seconds": round(sum(r.seconds for r in recordings), 1),
        "noise_files": len(noise_paths),
    }
