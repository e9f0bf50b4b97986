"""The cohort: speakers, their recordings in SPIRA's layout, and the ward-noise set.

Every random stream is keyed here by (seed, purpose, speaker, utterance); the modules
below draw from the generators they are given.
"""

from __future__ import annotations

import csv
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from spira.augment.protocol import SPIRA_NOISE_PEAK_RANGE
from spira.data.audio import write_float_wav
from spira.data.splits import split_speakers
from spira.demo.noise import SiteProfile, WardProfile, draw_site, draw_ward, home_background, site_channel, ward_noise
from spira.demo.utterance import UTTERANCE_KINDS, render_speech
from spira.demo.voice import Voice, draw_voice
from spira.parallel import ordered_map

SPLIT_NAMES = ("train", "eval", "test")
METADATA_COLUMNS = ("file_path", "class", "speaker_id", "sex", "age", "site")

NOISE_SET_SAMPLE_RATE = 16000
NOISE_SPLITS = ("train", "val", "test")

# Random-stream purposes: each gets its own key so draws of one never shift another.
STREAM_CLASS, STREAM_VOICE, STREAM_FILE, STREAM_SYNTH = 1, 2, 3, 4
STREAM_IDS, STREAM_SPLIT, STREAM_WARD, STREAM_NOISE_FILE = 5, 6, 7, 8
STREAM_SEVERITY, STREAM_SCENE, STREAM_SITE = 9, 10, 11


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
    # Patients' severity ~ Beta(alpha, beta) on [0, 1], scaled by marker_strength: mild to severe.
    severity_alpha: float = 2.5
    severity_beta: float = 1.75
    marker_strength: float = 1.0
    # Recording sites, and how strongly patients favour the first ones (0: sites independent of class).
    n_sites: int = 3
    site_confound: float = 0.5
    # Share of a site's files at its own sample rate (the rest: any of sample_rates).
    site_rate_share: float = 0.5
    # Chance that a speaker was recorded in a ward (ward noise behind the speech), per class.
    ward_background_patients: float = 0.8
    ward_background_controls: float = 0.25
    # Background peak relative to the speech peak: a ward (SPIRA's noise peaks), a home.
    ward_peak_range: tuple[float, float] = SPIRA_NOISE_PEAK_RANGE
    home_peak_range: tuple[float, float] = (0.01, 0.06)
    # Wards behind the recordings and in the training noise; each held-out noise split has a ward of its own.
    n_wards: int = 6
    n_noise_files: int = 12
    held_out_noise_files: int = 2
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
            "severity_alpha": float(self.severity_alpha),
            "severity_beta": float(self.severity_beta),
            "marker_strength": float(self.marker_strength),
            "n_sites": int(self.n_sites),
            "site_confound": float(self.site_confound),
            "site_rate_share": float(self.site_rate_share),
            "ward_background_patients": float(self.ward_background_patients),
            "ward_background_controls": float(self.ward_background_controls),
            "ward_peak_range": tuple(float(x) for x in self.ward_peak_range),
            "home_peak_range": tuple(float(x) for x in self.home_peak_range),
            "n_wards": int(self.n_wards),
            "n_noise_files": int(self.n_noise_files),
            "held_out_noise_files": int(self.held_out_noise_files),
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
        for name in ("stereo_fraction", "flac_fraction", "site_confound", "site_rate_share",
                     "ward_background_patients", "ward_background_controls"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if self.marker_strength < 0 or self.severity_alpha <= 0 or self.severity_beta <= 0:
            raise ValueError("need marker_strength >= 0 and severity_alpha, severity_beta > 0")
        if self.n_sites < 1 or self.n_wards < 1:
            raise ValueError("need n_sites >= 1 and n_wards >= 1")
        for name in ("ward_peak_range", "home_peak_range"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high < 1.0:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high < 1")
        if self.n_noise_files < 0 or self.held_out_noise_files < 0 or self.noise_seconds <= 0:
            raise ValueError("need n_noise_files >= 0, held_out_noise_files >= 0 and noise_seconds > 0")
        if self.seed < 0:
            raise ValueError("seed must be >= 0")


@dataclass(frozen=True)
class Speaker:
    """A cohort member: class, voice, recording site, and the ward behind its recordings (None: at home)."""

    index: int
    speaker_id: str
    is_patient: bool
    site: int
    ward: int | None
    voice: Voice


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


def site_weights(n_sites: int, confound: float, is_patient: bool) -> np.ndarray:
    """Patients favour the first sites and controls the last, by `confound` (0: the same for both)."""
    tilt = np.linspace(1.0, -1.0, n_sites) if n_sites > 1 else np.zeros(1)
    weights = 1.0 + confound * tilt * (1.0 if is_patient else -1.0)
    return weights / weights.sum()


def draw_speaker(config: DemoCohortConfig, index: int) -> Speaker:
    seed = config.seed
    # Classes alternate within pairs of speakers, in seeded order: balanced and stable.
    patient_first = np.random.default_rng([seed, STREAM_CLASS, index // 2]).random() < 0.5
    is_patient = (index % 2 == 0) == patient_first
    severity_rng = np.random.default_rng([seed, STREAM_SEVERITY, index])
    raw_severity = severity_rng.beta(config.severity_alpha, config.severity_beta)
    severity = raw_severity * config.marker_strength if is_patient else 0.0
    scene = np.random.default_rng([seed, STREAM_SCENE, index])
    site = int(scene.choice(config.n_sites, p=site_weights(config.n_sites, config.site_confound, is_patient)))
    in_ward = scene.random() < (config.ward_background_patients if is_patient else config.ward_background_controls)
    ward = int(scene.integers(config.n_wards))
    voice = draw_voice(np.random.default_rng([seed, STREAM_VOICE, index]), severity)
    return Speaker(index=index, speaker_id=f"spk-{index + 1:04d}", is_patient=is_patient,
                   site=site, ward=ward if in_ward else None, voice=voice)


def synthesise_recording(recording: Recording, config: DemoCohortConfig,
                         wards: tuple[WardProfile, ...], sites: tuple[SiteProfile, ...]) -> np.ndarray:
    """The samples of one file, shape (frames,) or (frames, channels), peak = speaker level."""
    speaker = recording.speaker
    rng = np.random.default_rng([config.seed, STREAM_SYNTH, speaker.index, recording.utterance])
    sample_rate = recording.sample_rate
    n_samples = int(round(recording.seconds * sample_rate))
    dry = render_speech(rng, speaker.voice, recording.kind, n_samples, sample_rate)
    channels = [site_channel(rng, sites[speaker.site], dry, sample_rate) for _ in range(recording.channels)]
    speech_peak = max(float(np.max(np.abs(channel))) for channel in channels)
    if speaker.ward is not None:
        background = ward_noise(rng, wards[speaker.ward], n_samples, sample_rate)
        background *= rng.uniform(*config.ward_peak_range) * speech_peak
    else:
        background = home_background(rng, n_samples, sample_rate)
        background *= rng.uniform(*config.home_peak_range) * speech_peak
    mixed = np.stack([channel + rng.uniform(0.85, 1.0) * background for channel in channels],
                     axis=1)
    mixed *= speaker.voice.level * rng.uniform(0.9, 1.1) / float(np.max(np.abs(mixed)))
    mixed = np.clip(mixed, -0.99, 0.99)
    return mixed[:, 0] if recording.channels == 1 else mixed


def plan_recordings(config: DemoCohortConfig, speakers: list[Speaker], sites: tuple[SiteProfile, ...]) -> list[Recording]:
    """Format, rate, channels and duration per file; ids numbered in a shuffled order."""
    total = len(speakers) * config.utterances_per_speaker
    id_order = np.random.default_rng([config.seed, STREAM_IDS]).permutation(total)
    width = max(4, len(str(total)))
    recordings = []
    for speaker, utterance in itertools.product(speakers, range(config.utterances_per_speaker)):
        rng = np.random.default_rng([config.seed, STREAM_FILE, speaker.index, utterance])
        seconds = round(rng.uniform(config.min_seconds, config.max_seconds), 3)
        any_rate = config.sample_rates[int(rng.integers(len(config.sample_rates)))]
        sample_rate = sites[speaker.site].preferred_rate if rng.random() < config.site_rate_share else any_rate
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


def noise_file_splits(n_files: int, held_out: int) -> list[str]:
    """The split of each noise file: `held_out` each for val and test (fewer when there are
    too few files to leave training at least one), the rest train."""
    held_out = min(held_out, max(0, (n_files - 1) // 2))
    return ["train"] * (n_files - 2 * held_out) + ["val"] * held_out + ["test"] * held_out


def noise_ward(number: int, split: str, n_wards: int) -> int:
    """The ward of noise file `number` (from 1): training noise cycles through the recordings'
    wards 0..n_wards-1; the val and test noise have a ward each (n_wards, n_wards + 1), heard nowhere else."""
    return (number - 1) % n_wards if split == "train" else n_wards + NOISE_SPLITS.index(split) - 1


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
                         wards: tuple[WardProfile, ...], sites: tuple[SiteProfile, ...], out_dir: Path) -> None:
    samples = synthesise_recording(recording, config, wards, sites)
    write_audio(out_dir / recording.file_path, samples, recording.sample_rate, recording.subtype)


def generate_demo_cohort(out_dir: Path, config: DemoCohortConfig) -> dict:
    """Write the synthetic cohort under `out_dir`; returns counts. Deterministic per config.

    Layout: audio/rec_NNNN.{wav,flac}; metadata_{train,eval,test}.csv with columns
    file_path,class,speaker_id,sex,age,site; noise/ward_NNN.wav listed in noise_data.csv
    (columns path_wav, split). Paths in the CSVs are relative to `out_dir`.
    """
    out_dir = Path(out_dir)
    (out_dir / "audio").mkdir(parents=True, exist_ok=True)
    (out_dir / "noise").mkdir(parents=True, exist_ok=True)
    remove_stale_outputs(out_dir)

    speakers = [draw_speaker(config, index) for index in range(config.n_speakers)]
    noise_splits = noise_file_splits(config.n_noise_files, config.held_out_noise_files)
    # The recordings' wards, then one ward of its own per held-out noise split.
    wards = tuple(draw_ward(np.random.default_rng([config.seed, STREAM_WARD, ward]))
                  for ward in range(config.n_wards + 2))
    sites = tuple(draw_site(np.random.default_rng([config.seed, STREAM_SITE, site]), config.sample_rates)
                  for site in range(config.n_sites))
    recordings = plan_recordings(config, speakers, sites)
    split_of = split_demo_speakers(config, speakers)

    write_recording = functools.partial(synthesise_and_write, config=config, wards=wards,
                                        sites=sites, out_dir=out_dir)
    list(ordered_map(write_recording, recordings, config.num_workers, chunksize=8))

    rows: dict[str, list[tuple]] = {name: [] for name in SPLIT_NAMES}
    for recording in recordings:
        speaker = recording.speaker
        rows[split_of[speaker.speaker_id]].append(
            (recording.file_path, int(speaker.is_patient), speaker.speaker_id,
             speaker.voice.sex, speaker.voice.age, f"site_{speaker.site + 1}"))
    for name in SPLIT_NAMES:
        write_csv(out_dir / f"metadata_{name}.csv", METADATA_COLUMNS, sorted(rows[name]))

    noise_paths = []
    n_noise_samples = int(round(config.noise_seconds * NOISE_SET_SAMPLE_RATE))
    for number, split in enumerate(noise_splits, start=1):
        rng = np.random.default_rng([config.seed, STREAM_NOISE_FILE, number])
        noise = ward_noise(rng, wards[noise_ward(number, split, config.n_wards)], n_noise_samples, NOISE_SET_SAMPLE_RATE)
        path = f"noise/ward_{number:03d}.wav"
        write_audio(out_dir / path, rng.uniform(0.3, 0.9) * noise, NOISE_SET_SAMPLE_RATE, "PCM_16")
        noise_paths.append((path, split))
    write_csv(out_dir / "noise_data.csv", ["path_wav", "split"], noise_paths)

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
        "noise_files_per_split": {name: noise_splits.count(name) for name in NOISE_SPLITS},
        "patients_per_site": [sum(s.is_patient and s.site == site for s in speakers) for site in range(config.n_sites)],
        "controls_per_site": [sum(not s.is_patient and s.site == site for s in speakers) for site in range(config.n_sites)],
        "in_ward": {"patients": sum(s.is_patient and s.ward is not None for s in speakers),
                    "controls": sum(not s.is_patient and s.ward is not None for s in speakers)},
    }
