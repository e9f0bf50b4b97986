"""Tests of the synthetic SPIRA-layout cohort generator, on real files written to tmp_path."""

from __future__ import annotations

import csv
import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.demo.cohort import draw_speaker, noise_ward, split_demo_speakers

TINY = dict(
    n_speakers=8,
    utterances_per_speaker=2,
    min_seconds=1.0,
    max_seconds=2.0,
    sample_rates=(16000, 22050),
    stereo_fraction=0.5,
    flac_fraction=0.5,
    n_noise_files=2,
    noise_seconds=2.0,
)
# Long enough for breath groups and pauses; one rate keeps the measurements comparable.
MEASURABLE = dict(
    n_speakers=12,
    utterances_per_speaker=3,
    min_seconds=4.0,
    max_seconds=5.0,
    sample_rates=(16000,),
    n_noise_files=1,
    noise_seconds=2.0,
)
SPLITS = ("train", "eval", "test")


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def metadata(root: Path) -> dict[str, list[dict[str, str]]]:
    return {split: read_csv(root / f"metadata_{split}.csv")[1] for split in SPLITS}


def all_rows(root: Path) -> list[dict[str, str]]:
    return [row for rows in metadata(root).values() for row in rows]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file()}


def mono(root: Path, relative: str) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(root / relative, always_2d=True)
    return samples.mean(axis=1), rate


def frame_levels_db(x: np.ndarray, rate: int, frame_seconds: float = 0.02) -> np.ndarray:
    """Frame RMS in dB relative to the loudest frame."""
    size = int(frame_seconds * rate)
    frames = x[: len(x) // size * size].reshape(-1, size)
    rms = np.sqrt(np.mean(frames**2, axis=1)) + 1e-9
    return 20 * np.log10(rms / rms.max())


def spectral_flatness(x: np.ndarray, size: int) -> np.ndarray:
    """Per frame: 1 for white noise, near 0 for a harmonic (voiced) sound."""
    frames = x[: len(x) // size * size].reshape(-1, size)
    power = np.abs(np.fft.rfft(frames * np.hanning(size), axis=1)) ** 2 + 1e-12
    return np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)


def audible_breath_fraction(x: np.ndarray, rate: int) -> float:
    """Inhalations and aspiration: noise-like frames within 20 dB of the loudest."""
    size = int(0.02 * rate)
    return float(np.mean((spectral_flatness(x, size) > 0.05)
                         & (frame_levels_db(x, rate, size / rate) > -20)))


def noise_floor_db(x: np.ndarray, rate: int) -> float:
    return float(np.percentile(frame_levels_db(x, rate), 5))


def background_frames(x: np.ndarray, size: int) -> np.ndarray:
    """The quietest tenth of the frames: between words and breaths, mostly background."""
    frames = x[: len(x) // size * size].reshape(-1, size)
    level = np.sqrt(np.mean(frames**2, axis=1))
    return frames[level <= np.percentile(level, 10)]


def floor_flatness(x: np.ndarray, rate: int) -> float:
    """Spectral flatness of the background: high when broadband, low when tonal."""
    size = 1024
    return float(np.mean(spectral_flatness(background_frames(x, size).ravel(), size)))


def floor_low_share(x: np.ndarray, rate: int) -> float:
    """Share of the background's power below 500 Hz."""
    size = 1024
    power = np.abs(np.fft.rfft(background_frames(x, size) * np.hanning(size), axis=1)) ** 2
    below = np.fft.rfftfreq(size, 1 / rate) < 500
    return float(np.mean(power[:, below].sum(axis=1) / power.sum(axis=1)))


def voiced_flatness(x: np.ndarray, rate: int) -> float:
    """Mean spectral flatness of loud frames: breathiness and jitter raise it."""
    size = 512
    flatness = spectral_flatness(x, size)
    loud = frame_levels_db(x, rate, size / rate) > -10
    return float(np.mean(flatness[loud]))


def class_mean(root: Path, label: str, measure) -> float:
    return float(np.mean([measure(*mono(root, row["file_path"]))
                          for row in all_rows(root) if row["class"] == label]))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("tiny")
    return root, generate_demo_cohort(root, DemoCohortConfig(**TINY))


def test_config_accepts_yaml_values_and_stays_frozen() -> None:
    config = DemoCohortConfig(n_speakers=10, min_seconds=1, max_seconds=3,
                              sample_rates=[16000, 48000], seed=3)
    assert config.sample_rates == (16000, 48000)
    assert isinstance(config.min_seconds, float) and config.min_seconds == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 4  # type: ignore[misc]
    with pytest.raises(ValueError):
        DemoCohortConfig(n_speakers=4)
    with pytest.raises(ValueError):
        DemoCohortConfig(min_seconds=5.0, max_seconds=2.0)


def test_metadata_is_spira_format_and_speaker_disjoint(tiny: tuple[Path, dict]) -> None:
    root, summary = tiny
    per_split = metadata(root)
    for split in SPLITS:
        header, _ = read_csv(root / f"metadata_{split}.csv")
        assert header == ["file_path", "class", "speaker_id", "sex", "age", "site"]
    rows = all_rows(root)
    assert len(rows) == 8 * 2 == summary["recordings"]
    assert {split: len(per_split[split]) for split in SPLITS} == summary["recordings_per_split"]
    speakers_of = {split: {row["speaker_id"] for row in per_split[split]} for split in SPLITS}
    assert not speakers_of["train"] & speakers_of["eval"]
    assert not speakers_of["train"] & speakers_of["test"]
    assert not speakers_of["eval"] & speakers_of["test"]
    assert {row["class"] for row in per_split["train"]} == {"0", "1"}
    assert sum(row["class"] == "1" for row in rows) == sum(row["class"] == "0" for row in rows)
    for row in rows:
        assert re.fullmatch(r"spk-\d{4}", row["speaker_id"])
        assert row["sex"] in {"F", "M"}
        assert 18 <= int(row["age"]) <= 90
        assert (root / row["file_path"]).is_file()
        # Each speaker keeps one sex and age across files.
        same = [r for r in rows if r["speaker_id"] == row["speaker_id"]]
        traits = {(r["sex"], r["age"], r["class"]) for r in same}
        assert traits == {(row["sex"], row["age"], row["class"])}


def test_file_names_reveal_no_speaker(tiny: tuple[Path, dict]) -> None:
    root, _ = tiny
    rows = sorted(all_rows(root), key=lambda row: row["file_path"])
    for row in rows:
        assert re.fullmatch(r"audio/rec_\d{4}\.(wav|flac)", row["file_path"])
        assert row["speaker_id"] not in row["file_path"]
    numbers = sorted(int(re.search(r"\d+", row["file_path"]).group()) for row in rows)
    assert numbers == list(range(1, len(rows) + 1))
    # Shuffled numbering: in name order, a speaker's files are not all adjacent.
    speaker_sequence = [row["speaker_id"] for row in rows]
    assert speaker_sequence != sorted(speaker_sequence)


def test_audio_formats_rates_channels_and_durations(tiny: tuple[Path, dict]) -> None:
    root, summary = tiny
    infos = [sf.info(str(root / row["file_path"])) for row in all_rows(root)]
    assert {info.samplerate for info in infos} == {16000, 22050}
    assert {info.channels for info in infos} == {1, 2}
    assert {info.format for info in infos} == {"WAV", "FLAC"}
    assert sum(info.format == "FLAC" for info in infos) == summary["flac"]
    assert sum(info.channels == 2 for info in infos) == summary["stereo"]
    for info in infos:
        assert 1.0 - 1e-3 <= info.frames / info.samplerate <= 2.0 + 1e-3
    for row in all_rows(root):
        samples, _ = sf.read(root / row["file_path"])
        assert 0.05 < np.max(np.abs(samples)) < 1.0


def test_noise_set_is_listed_and_contains_monitor_beeps(tiny: tuple[Path, dict]) -> None:
    root, summary = tiny
    header, rows = read_csv(root / "noise_data.csv")
    assert header == ["path_wav", "split"]
    assert [row["path_wav"] for row in rows] == ["noise/ward_001.wav", "noise/ward_002.wav"]
    # Too few files to hold any out: both are training noise.
    assert [row["split"] for row in rows] == ["train", "train"]
    assert summary["noise_files"] == 2
    for row in rows:
        noise, rate = sf.read(root / row["path_wav"])
        assert noise.ndim == 1 and rate == 16000 and len(noise) == 2 * 16000
        power = np.abs(np.fft.rfft(noise)) ** 2
        hz = np.fft.rfftfreq(len(noise), 1 / rate)
        beep_band = (hz >= 800) & (hz <= 3000)
        # A tonal peak (monitor beep) towers over the band's typical level.
        assert power[beep_band].max() > 100 * np.median(power[beep_band])


def test_same_seed_same_bytes_other_seed_other_audio(tiny: tuple[Path, dict],
                                                     tmp_path: Path) -> None:
    root, _ = tiny
    generate_demo_cohort(tmp_path / "again", DemoCohortConfig(**TINY))
    generate_demo_cohort(tmp_path / "other", DemoCohortConfig(**TINY, seed=1))
    first = tree_bytes(root)
    again, other = tree_bytes(tmp_path / "again"), tree_bytes(tmp_path / "other")
    assert first == again
    audio = [name for name in first if name.startswith("audio/")]
    assert all(first[name] != other.get(name) for name in audio)


def test_worker_processes_write_the_same_bytes(tmp_path: Path) -> None:
    # Enough recordings (>= MIN_ITEMS_FOR_WORKERS) that the worker pool is used.
    config = {**TINY, "n_speakers": 22, "utterances_per_speaker": 3}
    generate_demo_cohort(tmp_path / "pool", DemoCohortConfig(**config, num_workers=2))
    generate_demo_cohort(tmp_path / "inline", DemoCohortConfig(**config, num_workers=0))
    pooled = tree_bytes(tmp_path / "pool")
    assert len([name for name in pooled if name.startswith("audio/")]) == 66
    assert pooled == tree_bytes(tmp_path / "inline")


def test_more_speakers_leave_existing_voices_unchanged(tiny: tuple[Path, dict],
                                                      tmp_path: Path) -> None:
    root, _ = tiny
    generate_demo_cohort(tmp_path, DemoCohortConfig(**{**TINY, "n_speakers": 10}))

    def audio_by_speaker(cohort: Path) -> dict[str, set[bytes]]:
        audio: dict[str, set[bytes]] = {}
        for row in all_rows(cohort):
            audio.setdefault(row["speaker_id"], set()).add((cohort / row["file_path"]).read_bytes())
        return audio

    smaller, larger = audio_by_speaker(root), audio_by_speaker(tmp_path)
    assert len(larger) == 10
    assert all(larger[speaker] == files for speaker, files in smaller.items())


def test_default_split_is_70_15_15_per_class() -> None:
    config = DemoCohortConfig()
    speakers = [draw_speaker(config, index) for index in range(config.n_speakers)]
    split_of = split_demo_speakers(config, speakers)
    for is_patient in (False, True):
        splits = [split_of[s.speaker_id] for s in speakers if s.is_patient == is_patient]
        assert [splits.count(name) for name in SPLITS] == [42, 9, 9]


def test_regenerating_into_a_used_directory_leaves_no_stale_files(tmp_path: Path) -> None:
    bigger = {**TINY, "n_speakers": 10, "n_noise_files": 3}
    generate_demo_cohort(tmp_path, DemoCohortConfig(**bigger))
    generate_demo_cohort(tmp_path, DemoCohortConfig(**TINY))
    listed = {row["file_path"] for row in all_rows(tmp_path)}
    assert {str(p.relative_to(tmp_path)) for p in (tmp_path / "audio").iterdir()} == listed
    assert len(list((tmp_path / "noise").iterdir())) == 2


def test_format_fractions_are_honoured(tmp_path: Path) -> None:
    forced = {key: value for key, value in TINY.items() if not key.endswith("_fraction")}
    forced["n_noise_files"] = 0
    generate_demo_cohort(tmp_path / "stereo_flac",
                         DemoCohortConfig(**forced, stereo_fraction=1.0, flac_fraction=1.0))
    generate_demo_cohort(tmp_path / "mono_wav",
                         DemoCohortConfig(**forced, stereo_fraction=0.0, flac_fraction=0.0))
    for row in all_rows(tmp_path / "stereo_flac"):
        samples, _ = sf.read(tmp_path / "stereo_flac" / row["file_path"])
        assert row["file_path"].endswith(".flac") and samples.shape[1] == 2
        # Two microphones in one room: different, but strongly correlated channels.
        assert not np.array_equal(samples[:, 0], samples[:, 1])
        assert np.corrcoef(samples[:, 0], samples[:, 1])[0, 1] > 0.5
    for row in all_rows(tmp_path / "mono_wav"):
        assert row["file_path"].endswith(".wav")
        assert sf.info(str(tmp_path / "mono_wav" / row["file_path"])).channels == 1


def test_respiratory_markers_follow_marker_strength(tmp_path: Path) -> None:
    strong, none = tmp_path / "strong", tmp_path / "none"
    # Severe patients (severity near 1) and no ward noise: the markers alone tell them apart.
    severe = dict(MEASURABLE, severity_alpha=30.0, severity_beta=1.0, ward_background_patients=0.0, ward_background_controls=0.0)
    generate_demo_cohort(strong, DemoCohortConfig(**severe, marker_strength=1.0))
    generate_demo_cohort(none, DemoCohortConfig(**severe, marker_strength=0.0))
    # Controls do not depend on marker_strength at all.
    for row in all_rows(strong):
        same = (strong / row["file_path"]).read_bytes() == (none / row["file_path"]).read_bytes()
        assert same == (row["class"] == "0")
    # Patients breathe audibly between shorter breath groups, and sound breathier,
    # with markers on.
    breaths = {(name, label): class_mean(root, label, audible_breath_fraction)
               for name, root in (("strong", strong), ("none", none)) for label in ("0", "1")}
    assert breaths["strong", "1"] > 2 * breaths["none", "1"]
    assert class_mean(strong, "1", voiced_flatness) > 1.3 * class_mean(none, "1", voiced_flatness)
    # Without markers, patients' voices are like controls'.
    assert abs(breaths["none", "1"] - breaths["none", "0"]) < 0.02


def test_ward_noise_marks_the_patients_recorded_in_wards(tmp_path: Path) -> None:
    ward, clean = tmp_path / "ward", tmp_path / "clean"
    # Every patient in a ward, every control at home, with a home quieter than any ward.
    quiet_home = dict(MEASURABLE, ward_background_controls=0.0, home_peak_range=(0.01, 0.03))
    generate_demo_cohort(ward, DemoCohortConfig(**quiet_home, ward_background_patients=1.0))
    generate_demo_cohort(clean, DemoCohortConfig(**quiet_home, ward_background_patients=0.0))
    measures = (noise_floor_db, floor_flatness, floor_low_share)
    floor = {(measure.__name__, name, label): class_mean(root, label, measure)
             for measure in measures for name, root in (("ward", ward), ("clean", clean))
             for label in ("0", "1")}
    # Ward noise lifts the floor of patient recordings well above the home room tone ...
    assert floor["noise_floor_db", "ward", "1"] > floor["noise_floor_db", "ward", "0"] + 8
    # ... and it is tonal and low-pitched (hum, air flow, beeps, babble) where the room
    # tone is broadband.
    assert floor["floor_flatness", "ward", "1"] < 0.25 * floor["floor_flatness", "ward", "0"]
    assert floor["floor_low_share", "ward", "1"] > floor["floor_low_share", "ward", "0"] + 0.3
    # Without ward noise both classes share the same kind of background.
    for measure, tolerance in (("noise_floor_db", 4), ("floor_flatness", 0.1), ("floor_low_share", 0.1)):
        assert abs(floor[measure, "clean", "1"] - floor[measure, "clean", "0"]) < tolerance
        assert floor[measure, "clean", "0"] == floor[measure, "ward", "0"]


def test_the_demo_generator_loads_no_torch():
    """The demo cohort is numpy only: SPIRA's noise constants come from spira.augment.protocol,
    so generating the data does not load the training stack."""
    program = "import sys, spira.demo, spira.pipeline.demo; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_demo_backgrounds_and_the_augmentation_share_spira_s_noise_peaks():
    from spira.augment.protocol import SPIRA_NOISE_PEAK_RANGE
    from spira.config import compose_config

    ward_noise = compose_config([]).augment.ward_noise
    assert (ward_noise.min_amplitude, ward_noise.max_amplitude) == SPIRA_NOISE_PEAK_RANGE


def test_val_and_test_noise_come_from_wards_heard_nowhere_else(tmp_path: Path) -> None:
    config = DemoCohortConfig(**{**TINY, "n_noise_files": 7, "noise_seconds": 4.0, "n_wards": 2})
    summary = generate_demo_cohort(tmp_path, config)
    _, rows = read_csv(tmp_path / "noise_data.csv")
    assert [row["split"] for row in rows] == ["train"] * 3 + ["val"] * 2 + ["test"] * 2
    assert summary["noise_files_per_split"] == {"train": 3, "val": 2, "test": 2}
    speakers = [draw_speaker(config, index) for index in range(config.n_speakers)]
    # Recordings are made in wards 0 and 1 only; ward 2 is the val noise's own and 3 the test noise's.
    assert {s.ward for s in speakers} - {None} <= {0, 1}
    wards = [noise_ward(number, row["split"], config.n_wards) for number, row in enumerate(rows, start=1)]
    assert wards == [0, 1, 0, 2, 2, 3, 3]


def test_sites_and_ward_backgrounds_follow_their_knobs() -> None:
    def counts(**knobs) -> tuple[list[int], list[int], int, int]:
        config = DemoCohortConfig(n_speakers=600, **knobs)
        speakers = [draw_speaker(config, index) for index in range(config.n_speakers)]
        patients = [s for s in speakers if s.is_patient]
        controls = [s for s in speakers if not s.is_patient]
        per_site = lambda group: [sum(s.site == site for s in group) for site in range(config.n_sites)]  # noqa: E731
        return per_site(patients), per_site(controls), sum(s.ward is not None for s in patients), sum(s.ward is not None for s in controls)

    patients, controls, patients_in_ward, controls_in_ward = counts(site_confound=0.5, ward_background_patients=0.8, ward_background_controls=0.25)
    # 300 of each class: patients favour site 0 (expected 150/100/50), controls site 2.
    assert patients[0] > 120 > patients[2] + 40 and controls[2] > 120 > controls[0] + 40
    assert 215 < patients_in_ward < 265 and 50 < controls_in_ward < 100
    patients, controls, patients_in_ward, controls_in_ward = counts(site_confound=0.0, ward_background_patients=0.3, ward_background_controls=0.3)
    assert all(70 < n < 130 for n in patients + controls) and abs(patients_in_ward - controls_in_ward) < 40
