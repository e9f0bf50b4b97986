"""On-disk format of featurize's output, shared by training and evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES_FILE = "{split}.npy"
INDEX_FILE = "{split}_index.csv"
NORMALIZATION_FILE = "normalization.json"
# The test split with the noisy-test protocol applied, using test noise only.
NOISY_TEST = "test_noisy"
# The validation split with the same protocol, using validation noise only (joins model selection).
NOISY_VAL = "val_noisy"
# Noisy set -> the split whose files, and whose noise recordings, it is made of.
NOISY_SETS = {NOISY_VAL: "val", NOISY_TEST: "test"}
INDEX_COLUMNS = ["file_id", "window", "start_seconds", "padded_seconds", "label", "speaker_id"]


def has_split(features_dir: Path, split: str) -> bool:
    """Whether featurize wrote `split` (the noisy sets are missing when the cohort has no noise recordings)."""
    return (features_dir / INDEX_FILE.format(split=split)).is_file()


def load_split(features_dir: Path, split: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Memory-mapped (windows, frames, coefficients) array and its window index."""
    windows = np.load(features_dir / FEATURES_FILE.format(split=split), mmap_mode="r")
    index = pd.read_csv(features_dir / INDEX_FILE.format(split=split), dtype={"file_id": str, "speaker_id": str})
    if len(index) != windows.shape[0]:
        raise ValueError(f"{features_dir}: {split} has {windows.shape[0]} windows but {len(index)} index rows")
    return windows, index


def load_normalization(features_dir: Path) -> dict[str, list[float]] | None:
    path = features_dir / NORMALIZATION_FILE
    return json.loads(path.read_text()) if path.exists() else None
