"""Calibrating the ward-noise bounds on recordings whose noise peak is known."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from spira.augment.noise_level import PauseDetection, calibrate_noise_bounds, noise_only_peak, noise_only_stretches
from spira.cli import main
from spira.data.audio import write_float_wav
from spira.data.manifest import MANIFEST_COLUMNS

RATE = 16000
SYLLABLE_SECONDS = 0.2
SYLLABLE_GAP_SECONDS = 0.08  # dips between syllables: not pauses
PAUSE_SECONDS = 0.6
RAMP_SECONDS = 0.04  # speech fades in and out; the fades must not count as noise


def syllable(rng: np.random.Generator) -> np.ndarray:
    """A vowel-like harmonic complex (F0 ~140 Hz, 1/k spectrum) under a raised-cosine envelope, peak 1."""
    t = np.arange(int(SYLLABLE_SECONDS * RATE)) / RATE
    f0 = rng.uniform(110.0, 170.0)
    tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 11))
    ramp = int(RAMP_SECONDS * RATE)
    envelope = np.ones_like(t)
    envelope[:ramp] = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
    envelope[-ramp:] = envelope[:ramp][::-1]
    return tone * envelope / np.max(np.abs(tone))


def recording(
    noise_peak: float, seed: int, n_words: int = 4, pause_seconds: float = PAUSE_SECONDS
) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """Words of three syllables (peak 1) separated by pauses, over uniform noise of peak `noise_peak`.

    Returns the peak-normalised samples, the noise peak in the normalised file
    and the pauses' sample ranges. Uniform noise reaches its peak many times in
    every pause, so the expected per-file value is exact.
    """
    rng = np.random.default_rng(seed)
    gap, pause = np.zeros(int(SYLLABLE_GAP_SECONDS * RATE)), np.zeros(int(pause_seconds * RATE))
    pieces, pauses, position = [pause], [(0, pause.size)], pause.size
    for _ in range(n_words):
        word = np.concatenate([syllable(rng), gap, syllable(rng), gap, syllable(rng)])
        pieces += [word, pause]
        position += word.size
        pauses.append((position, position + pause.size))
        position += pause.size
    speech = np.concatenate(pieces)
    mixed = speech + rng.uniform(-noise_peak, noise_peak, speech.size)
    file_peak = float(np.max(np.abs(mixed)))
    return (mixed / file_peak).astype(np.float32), noise_peak / file_peak, pauses


def no_pause_recording(seed: int) -> np.ndarray:
    """Syllables separated only by short dips, noise throughout: no noise-only stretch."""
    rng = np.random.default_rng(seed)
    gap = np.zeros(int(SYLLABLE_GAP_SECONDS * RATE))
    speech = np.concatenate([piece for _ in range(15) for piece in (syllable(rng), gap)])
    mixed = speech + rng.uniform(-0.05, 0.05, speech.size)
    return (mixed / np.max(np.abs(mixed))).astype(np.float32)


@pytest.mark.parametrize("noise_peak", [0.03, 0.08, 0.19])
def test_per_file_peak_is_the_noise_peak(noise_peak):
    samples, expected, _ = recording(noise_peak, seed=1)
    assert noise_only_peak(samples, RATE) == pytest.approx(expected, rel=0.005)
    # Relative to the file's peak, as after SPIRA's peak normalisation.
    assert noise_only_peak(0.25 * samples, RATE) == pytest.approx(expected, rel=0.005)


def test_stretches_lie_inside_the_pauses():
    samples, _, pauses = recording(0.05, seed=2)
    stretches = noise_only_stretches(samples, RATE)
    assert len(stretches) == len(pauses)
    for (start, stop), (pause_start, pause_stop) in zip(stretches, pauses):
        assert pause_start <= start < stop <= pause_stop
        # Trimmed by the edge guard, but most of the pause is measured.
        assert stop - start >= 0.5 * (pause_stop - pause_start)


def test_speech_fades_do_not_raise_the_peak():
    # Quiet noise: a few milliseconds of a fading syllable would exceed it many times over.
    samples, expected, _ = recording(0.01, seed=3)
    assert noise_only_peak(samples, RATE) == pytest.approx(expected, rel=0.005)


def test_a_beep_inside_a_pause_is_ward_noise():
    samples, _, pauses = recording(0.03, seed=8)
    # A 40 ms monitor beep of peak 0.15 in the middle of every pause.
    beep = 0.15 * np.sin(2 * np.pi * 1000 * np.arange(int(0.04 * RATE)) / RATE)
    beeps = [slice((start + stop) // 2, (start + stop) // 2 + beep.size) for start, stop in pauses]
    for where in beeps:
        samples[where] += beep
    assert noise_only_peak(samples, RATE) == pytest.approx(max(np.max(np.abs(samples[where])) for where in beeps))
    # Without bridging, the beep splits every pause into two parts too short to count.
    assert noise_only_peak(samples, RATE, PauseDetection(bridge_seconds=0.0)) is None


def test_short_pauses_are_not_noise_only_stretches():
    samples, _, _ = recording(0.05, seed=4, pause_seconds=0.2)
    assert noise_only_stretches(samples, RATE) == []
    assert noise_only_peak(samples, RATE) is None


def test_files_without_a_pause_or_sound_give_none():
    assert noise_only_peak(no_pause_recording(seed=5), RATE) is None
    vowel = np.sin(2 * np.pi * 150 * np.arange(3 * RATE) / RATE) + np.random.default_rng(6).uniform(-0.05, 0.05, 3 * RATE)
    assert noise_only_peak(vowel, RATE) is None
    assert noise_only_peak(np.zeros(3 * RATE, dtype=np.float32), RATE) is None


def test_digital_silence_is_not_background():
    samples, expected, _ = recording(0.06, seed=7)
    padded = np.concatenate([np.zeros(RATE, dtype=np.float32), samples])
    assert noise_only_peak(padded, RATE) == pytest.approx(expected, rel=0.005)


def test_bounds_are_min_and_max_of_the_file_peaks():
    files = [recording(peak, seed=10 + number) for number, peak in enumerate([0.12, 0.04, 0.19, 0.07])]
    recordings = [(samples, RATE) for samples, _, _ in files] + [(no_pause_recording(seed=20), RATE)]
    bounds = calibrate_noise_bounds(recordings)
    expected = [value for _, value, _ in files]
    assert bounds.min_amplitude == pytest.approx(min(expected), rel=0.005)
    assert bounds.max_amplitude == pytest.approx(max(expected), rel=0.005)
    assert (bounds.files_used, bounds.files_skipped) == (4, 1)


def test_quantile_bounds_ignore_an_outlying_file():
    files = [recording(peak, seed=30 + number, n_words=2) for number, peak in enumerate(np.linspace(0.04, 0.10, 19))]
    recordings = [samples for samples, _, _ in files]
    # A door knock in one pause: a few loud samples that barely move the frame RMS.
    knocked, _, pauses = recording(0.06, seed=49, n_words=2)
    middle = (pauses[1][0] + pauses[1][1]) // 2
    knocked[middle : middle + 8] = 0.3
    peaks = [value for _, value, _ in files] + [0.3]
    bounds = calibrate_noise_bounds(((samples, RATE) for samples in [*recordings, knocked]), quantile=0.05)
    low, high = np.quantile(peaks, [0.05, 0.95])
    assert bounds.files_used == 20
    assert bounds.min_amplitude == pytest.approx(low, rel=0.005)
    assert bounds.max_amplitude == pytest.approx(high, rel=0.005)
    assert calibrate_noise_bounds([(knocked, RATE)]).max_amplitude == pytest.approx(0.3)


def test_calibration_needs_a_file_with_a_pause_and_a_sane_quantile():
    with pytest.raises(ValueError, match="none of the 1 files"):
        calibrate_noise_bounds([(no_pause_recording(seed=40), RATE)])
    with pytest.raises(ValueError, match="quantile"):
        calibrate_noise_bounds([], quantile=0.5)


def write_prepared(tmp_path: Path, files: list[tuple[str, int, str, np.ndarray]]) -> Path:
    """A prepared dataset as prepare writes it (data/prepared: manifest.csv + audio/<file_id>.wav) and its params.yaml."""
    prepared = tmp_path / "data" / "prepared"
    (prepared / "audio").mkdir(parents=True)
    rows = []
    for number, (split, label, speaker_id, samples) in enumerate(files):
        file_id = f"{number:02d}f3a9c1d2e4b5a6c7"
        write_float_wav(prepared / "audio" / f"{file_id}.wav", samples, RATE)
        rows.append({
            "file_id": file_id, "path": f"audio/{file_id}.wav", "label": label, "speaker_id": speaker_id, "split": split,
            "n_samples": samples.size, "duration_seconds": round(samples.size / RATE, 4), "source_sample_rate": 44100,
            "source_channels": 1, "source_format": "WAV", "sex": "F", "age": 60.0, "severity": np.nan, "source_id": "",
        })  # fmt: skip
    pd.DataFrame.from_records(rows, columns=MANIFEST_COLUMNS).to_csv(prepared / "manifest.csv", index=False)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "augment": {"ward_noise": {"min_amplitude": 0.033474047, "max_amplitude": 0.19233719}},
    }))  # fmt: skip
    return params


def override(output: str, key: str) -> float:
    return float(re.search(rf"-S {re.escape(key)}=(\S+)", output).group(1))


def test_cli_prints_the_overrides_for_the_train_patients_and_no_identifiers(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    low, _, _ = recording(0.05, seed=50)
    high, _, _ = recording(0.15, seed=51)
    files = [
        ("train", 1, "spk9d1e7a", low),
        ("train", 1, "spk4b2c8f", high),
        ("train", 1, "spk0a6e3d", no_pause_recording(seed=52)),
        ("train", 0, "spk7c5b1e", recording(0.01, seed=53)[0]),  # control: not measured by default
        ("val", 1, "spk2f8d4a", recording(0.18, seed=54)[0]),  # other split: not measured by default
    ]
    params = write_prepared(tmp_path, files)
    expected_low, expected_high = noise_only_peak(low, RATE), noise_only_peak(high, RATE)
    assert expected_low == pytest.approx(0.05 / 1.05, rel=0.02) and expected_high == pytest.approx(0.15 / 1.15, rel=0.02)

    main(["calibrate-noise", "--params", str(params)])
    output = capsys.readouterr().out

    assert "2 patient files of the train split (1 skipped" in output
    for prefix in ("augment.ward_noise", "noisy_test"):
        assert override(output, f"{prefix}.min_amplitude") == pytest.approx(expected_low, rel=1e-3)
        assert override(output, f"{prefix}.max_amplitude") == pytest.approx(expected_high, rel=1e-3)
    assert re.search(r"^dvc exp run -S augment\.ward_noise\.min_amplitude=", output, re.MULTILINE)
    for identifier in ("f3a9c1d2e4b5a6c7", "audio/", ".wav", "spk", str(tmp_path)):
        assert identifier not in output


def test_cli_hides_the_path_of_a_missing_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = write_prepared(tmp_path, [("train", 1, "spk9d1e7a", recording(0.05, seed=60)[0])])
    missing = next((tmp_path / "data" / "prepared" / "audio").iterdir())
    missing.unlink()
    with pytest.raises(SystemExit) as exit_info:
        main(["calibrate-noise", "--params", str(params)])
    message = capsys.readouterr().err
    assert exit_info.value.code == 1 and message.startswith("error: spira calibrate-noise: a prepared audio file of the patient files is missing or unreadable")
    assert missing.stem not in message and "spk" not in message
