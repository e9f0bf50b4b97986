"""What a speaker says and how: the three SPIRA utterances as timelines of sound events.

A timeline places syllables (consonant bursts, closures and murmurs, then the vowel)
into breath groups separated by inhalations and pauses; the intonation follows the
breath groups and stressed syllables. `render_speech` turns one utterance of one
voice into dry mono samples.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from spira.demo.voice import (
    F0_FRAME_RATE,
    NoiseBurst,
    Voice,
    VoicedEvent,
    glottal_source,
    render_bursts,
    render_voiced,
)

UTTERANCE_KINDS = ("sustained_vowel", "sentence", "counting")
SYLLABLE_CROSSFADE_S = 0.025

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


def render_speech(rng: np.random.Generator, voice: Voice, kind: str, n_samples: int,
                  sample_rate: int) -> np.ndarray:
    """Dry (no room, no background) mono speech of one utterance."""
    seconds = n_samples / sample_rate
    timeline = utterance_timeline(rng, voice, kind, seconds)
    f0_hz = f0_contour(rng, voice, timeline, kind, seconds)
    source = glottal_source(rng, voice, f0_hz, n_samples, sample_rate)
    voiced, voiced_rms = render_voiced(timeline.voiced, source, voice, sample_rate)
    return voiced + voiced_rms * render_bursts(rng, timeline.bursts, n_samples, sample_rate)
