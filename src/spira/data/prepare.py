"""Prepare: manifests -> decoded 16 kHz mono peak-normalised audio, speaker-disjoint splits."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from omegaconf import DictConfig

from spira.data.audio import load_audio, write_float_wav
from spira.data.privacy import salted_id
from spira.data.splits import SPLITS, assign_splits

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.csv"
NOISE_MANIFEST_FILE = "noise_manifest.csv"
SUMMARY_FILE = "summary.json"


# Hashed ids are hex strings that can look like numbers: always read them as text.
ID_DTYPES = {"file_id": str, "speaker_id": str, "noise_id": str}


def read_prepared_manifest(prepared_dir: Path) -> pd.DataFrame:
    return pd.read_csv(prepared_dir / MANIFEST_FILE, dtype=ID_DTYPES)


def read_manifests(data: DictConfig) -> pd.DataFrame:
    """Concatenate the dataset's manifests into file_path, label, speaker_id (+ sex, age)."""
    root = Path(data.root)
    frames = []
    for name in data.manifests:
        table = pd.read_csv(root / name, dtype={data.columns.speaker: str})
        missing = [column for column in data.columns.values() if column not in table.columns]
        if missing:
            raise ValueError(f"{root / name}: missing column(s) {missing}; found {list(table.columns)}")
        renamed = table.rename(columns={data.columns.file: "file_path", data.columns.label: "label", data.columns.speaker: "speaker_id"})
        frames.append(renamed[["file_path", "label", "speaker_id"] + [c for c in ("sex", "age") if c in renamed.columns]])
    return pd.concat(frames, ignore_index=True)


def prepare_dataset(data: DictConfig) -> pd.DataFrame:
    """Decode every file, write prepared audio and the prepared manifest; return the manifest."""
    root, out_dir = Path(data.root), Path(data.out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    (out_dir / "audio").mkdir(parents=True)
    salt = str(data.speaker_id_salt)

    rows = read_manifests(data)
    records = []
    for row in rows.itertuples(index=False):
        samples, source_rate = load_audio(root / row.file_path, int(data.sample_rate))
        file_id = salted_id(str(row.file_path), salt)
        relative = f"audio/{file_id}.wav"
        write_float_wav(out_dir / relative, samples, int(data.sample_rate))
        records.append(
            {
                "file_id": file_id,
                "path": relative,
                "label": int(row.label),
                "speaker_id": salted_id(str(row.speaker_id), salt),
                "sex": getattr(row, "sex", ""),
                "age": getattr(row, "age", np.nan),
                "n_samples": samples.shape[0],
                "duration_seconds": round(samples.shape[0] / int(data.sample_rate), 4),
                "source_sample_rate": source_rate,
            }
        )
    manifest = pd.DataFrame.from_records(records)
    manifest["split"] = assign_splits(manifest, data.split.fractions, int(data.split.seed))
    manifest = manifest.sort_values("file_id", ignore_index=True)
    manifest.to_csv(out_dir / MANIFEST_FILE, index=False)

    noise = prepare_noise(data, out_dir)
    summary = split_summary(manifest) | {"noise_files": len(noise)}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return manifest


def prepare_noise(data: DictConfig, out_dir: Path) -> pd.DataFrame:
    """Resample the ward-noise set once, so augmentation never decodes at draw time."""
    if not data.get("noise_manifest"):
        return pd.DataFrame(columns=["noise_id", "path", "n_samples"])
    noise_root = Path(data.noise_root)
    listed = pd.read_csv(noise_root / data.noise_manifest)
    (out_dir / "noise").mkdir()
    records = []
    for path_wav in listed["path_wav"]:
        samples, _ = load_audio(noise_root / path_wav, int(data.sample_rate))
        noise_id = salted_id(str(path_wav), str(data.speaker_id_salt))
        relative = f"noise/{noise_id}.wav"
        write_float_wav(out_dir / relative, samples, int(data.sample_rate))
        records.append({"noise_id": noise_id, "path": relative, "n_samples": samples.shape[0]})
    noise = pd.DataFrame.from_records(records).sort_values("noise_id")
    noise.to_csv(out_dir / NOISE_MANIFEST_FILE, index=False)
    return noise


def split_summary(manifest: pd.DataFrame) -> dict:
    """Files, speakers and class balance per split (no identifiers)."""
    summary = {}
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        summary[split] = {
            "files": int(len(part)),
            "speakers": int(part["speaker_id"].nunique()),
            "patient_files": int((part["label"] == 1).sum()),
            "control_files": int((part["label"] == 0).sum()),
        }
    return summary
