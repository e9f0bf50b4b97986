"""The prepared data: what the prepare stage hands to featurize, training and calibration.

`data/prepared` holds the manifest of the accepted recordings, the manifest of
the ward-noise set, the audio they point to (mono at data.sample_rate,
peak-normalised; paths relative to the folder) and a summary without
identifiers. The readers
check what later stages rely on, so a stale or hand-edited folder fails with
the file and the problem named instead of deep inside a stage.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from spira.data.splits import SPLITS

MANIFEST_FILE = "manifest.csv"
NOISE_MANIFEST_FILE = "noise_manifest.csv"
SUMMARY_FILE = "summary.json"
# Folders of the prepared recordings and noise files, named `<file_id>.wav` / `<noise_id>.wav`.
AUDIO_FOLDER = "audio"
NOISE_FOLDER = "noise"

MANIFEST_COLUMNS = [
    "file_id", "path", "label", "speaker_id", "split", "n_samples", "duration_seconds",
    "source_sample_rate", "source_channels", "source_format", "sex", "age", "severity", "source_id",
]  # fmt: skip
# source_format: the original file's container as soundfile (libsndfile, the one decoder) names it:
# WAV, RF64, FLAC, OGG, MP3, AIFF, ...; a property the shortcut audit and the subgroups look at.
# split: the part of the pipeline that draws the recording (train: training augmentation,
# val: the noisy validation set, test: the noisy test set; splits.SHARED_NOISE: all of them).
NOISE_MANIFEST_COLUMNS = ["noise_id", "path", "n_samples", "split"]
# What later stages read; the other columns describe the recordings.
REQUIRED_MANIFEST_COLUMNS = ("file_id", "path", "label", "speaker_id", "split", "n_samples")
REQUIRED_NOISE_MANIFEST_COLUMNS = ("path",)
LABELS = (0, 1)  # control, patient

# Hashed ids are hex strings that can look like numbers: always read them as text.
ID_DTYPES = {"file_id": str, "speaker_id": str, "noise_id": str, "source_id": str}


def _require_columns(frame: pd.DataFrame, path: Path, required: tuple[str, ...]) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing} (its header is {list(frame.columns)})")


def _distinct_text(values: pd.Series) -> list[str]:
    return sorted({str(value) for value in values})


def read_prepared_manifest(prepared_dir: Path) -> pd.DataFrame:
    """manifest.csv of the prepared data; ValueError when it breaks the contract above."""
    path = prepared_dir / MANIFEST_FILE
    manifest = pd.read_csv(path, dtype=ID_DTYPES)
    _require_columns(manifest, path, REQUIRED_MANIFEST_COLUMNS)
    unknown_splits = _distinct_text(manifest["split"][~manifest["split"].isin(SPLITS)])
    if unknown_splits:
        raise ValueError(f"{path}: split values {unknown_splits} are not among {list(SPLITS)}")
    # Compared as numbers: one stray word makes pandas read the whole column as text, where "1" must still count.
    labels = pd.to_numeric(manifest["label"], errors="coerce")
    bad_labels = _distinct_text(manifest["label"][~labels.isin(LABELS)])
    if bad_labels:
        raise ValueError(f"{path}: labels {bad_labels} are not 0 (control) or 1 (patient)")
    return manifest


def read_noise_manifest(prepared_dir: Path) -> pd.DataFrame:
    """noise_manifest.csv of the prepared data; ValueError when a column later stages read is missing."""
    path = prepared_dir / NOISE_MANIFEST_FILE
    noise = pd.read_csv(path, dtype=ID_DTYPES)
    _require_columns(noise, path, REQUIRED_NOISE_MANIFEST_COLUMNS)
    return noise


def write_prepared_manifest(prepared_dir: Path, manifest: pd.DataFrame) -> None:
    manifest.to_csv(prepared_dir / MANIFEST_FILE, index=False)


def write_noise_manifest(prepared_dir: Path, noise: pd.DataFrame) -> None:
    noise.to_csv(prepared_dir / NOISE_MANIFEST_FILE, index=False)


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


def write_summary(prepared_dir: Path, manifest: pd.DataFrame, noise: pd.DataFrame) -> None:
    noise_splits = noise["split"].value_counts().sort_index() if "split" in noise else pd.Series(dtype=int)
    summary = split_summary(manifest) | {"noise_files": len(noise), "noise_files_per_split": {str(k): int(v) for k, v in noise_splits.items()}}
    (prepared_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
