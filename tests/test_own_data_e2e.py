"""Bring your own data, as a new user would: one `dvc exp run` line per dataset layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import run

pytestmark = pytest.mark.slow

# Real-data layouts need a secret salt in the environment (spira.data.privacy), as a user sets it.
SALT_ENV = {"SPIRA_SALT": "a-secret-of-this-cohort"}


def _raw_values_absent(repo: Path, values: set[str]) -> None:
    for output in ("data/prepared", "data/quarantine", "data/features", "eval", "metrics"):
        for path in (repo / output).rglob("*"):
            assert not any(v in path.name for v in values), path
            if path.suffix in (".csv", ".json"):
                text = path.read_text()
                assert not any(v in text for v in values), path


def test_spira_layout_keeps_the_given_split_end_to_end(tiny_repo: Path):
    result = run(["dvc", "exp", "run", "evaluate", "-S", "data=spira", "-S", "data.root=data/demo"], tiny_repo, env=SALT_ENV)
    assert "Running stage 'prepare'" in result.stdout and "Running stage 'evaluate'" in result.stdout

    manifest = pd.read_csv(tiny_repo / "data/prepared/manifest.csv", dtype={"file_id": str, "speaker_id": str})
    given = {"train": "train", "eval": "val", "test": "test"}
    raw = pd.concat(
        pd.read_csv(tiny_repo / "data/demo" / f"metadata_{name}.csv").assign(split=split) for name, split in given.items()
    )
    # Every row accepted, each in the split its metadata file gives.
    assert len(manifest) == len(raw)
    assert manifest["split"].value_counts().to_dict() == raw["split"].value_counts().to_dict()
    summary = json.loads((tiny_repo / "data/quarantine/quarantine_summary.json").read_text())
    assert summary["passed"] and summary["split_strategy"] == "given"
    assert summary["dataset"]["rows_in"] == summary["dataset"]["accepted"] == len(raw)
    assert summary["noise"]["accepted"] == 3  # the smoke cohort's noise recordings
    assert json.loads((tiny_repo / "metrics/test.json").read_text())["test_clean"]["n_files"] == (raw["split"] == "test").sum()
    _raw_values_absent(tiny_repo, set(raw["speaker_id"].astype(str)))


def _mixed_folder(root: Path) -> set[str]:
    """A generic CSV folder: MP3, FLAC, OGG and WAV at mixed rates, one empty upload, a noise folder."""
    audio = root / "recordings" / "voice notes"
    audio.mkdir(parents=True)
    formats = [("mp3", "MP3", None, 44100), ("flac", "FLAC", "PCM_24", 48000), ("wav", "WAV", "PCM_16", 22050),
               ("ogg", "OGG", "VORBIS", 32000), ("wav", "WAV", "FLOAT", 8000)]  # fmt: skip
    rng = np.random.default_rng(0)
    lines = ["Paciente;Diagnóstico;Arquivo;Hospital;Observação"]
    speakers = set()
    for number in range(24):  # 12 speakers: one per class in val and test
        extension, container, subtype, rate = formats[number % len(formats)]
        speaker, label = f"PAC{number // 2:03d}", ("positivo" if (number // 2) % 2 else "negativo")
        t = np.arange(int(1.5 * rate)) / rate
        samples = 0.4 * np.sin(2 * np.pi * (110 + 9 * number) * t) + 0.02 * rng.standard_normal(len(t))
        name = f"voice notes/{number:02d}.{extension}"
        sf.write(root / "recordings" / name, samples.astype(np.float32), rate, format=container, subtype=subtype)
        lines.append(f"{speaker};{label};{name};Hospital São Paulo;nota livre {number}")
        speakers.add(speaker)
    (audio / "upload.wav").write_bytes(b"")
    lines.append("PAC099;positivo;voice notes/upload.wav;Hospital São Paulo;upload vazio")
    (root / "recordings" / "pacientes.csv").write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    noise = root / "ward-noise"
    noise.mkdir()
    for number in range(2):
        sf.write(noise / f"ala_{number}.flac", (0.1 * rng.standard_normal(16000 * 5)).astype(np.float32), 16000, subtype="PCM_16")
    return speakers | {"PAC099"}


def test_generic_csv_folder_of_mixed_formats_end_to_end(tiny_repo: Path, tmp_path: Path):
    speakers = _mixed_folder(tmp_path)
    overrides = [
        "-S", "data=manifest", "-S", f"data.root={tmp_path / 'recordings'}", "-S", f"data.noise_root={tmp_path / 'ward-noise'}",
        "-S", "data.manifests.all=pacientes.csv", "-S", "data.columns.speaker=Paciente", "-S", "data.columns.file=Arquivo",
        "-S", "data.columns.label='Diagnóstico'", "-S", "data.columns.source=Hospital",
        "-S", "data.labels.patient=[positivo]", "-S", "data.labels.control=[negativo]",
        # The hash split of these 12 speakers (with this salt) gives every split both classes at seed 49.
        "-S", "data.split.seed=49",
    ]  # fmt: skip
    result = run(["dvc", "exp", "run", "evaluate", *overrides], tiny_repo, env=SALT_ENV)
    assert "Running stage 'evaluate'" in result.stdout

    manifest = pd.read_csv(tiny_repo / "data/prepared/manifest.csv", dtype={"file_id": str, "speaker_id": str})
    assert len(manifest) == 24
    assert sorted(manifest["source_sample_rate"].unique()) == [8000, 22050, 32000, 44100, 48000]
    assert sorted(manifest["source_format"].unique()) == ["FLAC", "MP3", "OGG", "WAV"]
    # The format is audited and gives the test set's subgroups.
    audit = json.loads((tiny_repo / "metrics/audit.json").read_text())
    assert audit["properties"]["format"]["auroc"] is not None
    subgroups = json.loads((tiny_repo / "metrics/subgroups.json").read_text())["test_clean"]
    assert sorted(subgroups["format"]) == sorted(manifest.loc[manifest["split"] == "test", "source_format"].unique())
    assert manifest.groupby("speaker_id")["split"].nunique().max() == 1
    assert manifest["source_id"].nunique() == 1 and "Observação" not in manifest.columns
    report = pd.read_csv(tiny_repo / "data/quarantine/quarantine.csv")
    assert report[["path", "reason"]].values.tolist() == [["voice notes/upload.wav", "empty_file"]]
    assert len(pd.read_csv(tiny_repo / "data/prepared/noise_manifest.csv")) == 2
    _raw_values_absent(tiny_repo, speakers | {"nota livre", "Hospital S"})

    # The same folder with a stricter threshold: the run fails and says why.
    strict = run(["dvc", "exp", "run", "prepare", *overrides, "-S", "data.max_quarantine_fraction=0.01"], tiny_repo, check=False, env=SALT_ENV)
    assert strict.returncode != 0
    assert "1 of 25 rows quarantined (4.0%), more than data.max_quarantine_fraction=0.01; by reason: empty_file 1" in strict.stderr
