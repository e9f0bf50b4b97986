"""Speaker-disjoint, class-stratified train/val/test splits."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


def split_speakers(speaker_labels: Mapping[str, int], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign every speaker to one split, stratified by the speaker's class.

    Speakers of each class are shuffled with `seed` and cut by `fractions`
    (largest-remainder rounding), so every split gets its share of both
    classes and no speaker appears in two splits.
    """
    total = sum(fractions[name] for name in SPLITS)
    if not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must sum to 1, got {dict(fractions)} (sum {total})")
    rng = np.random.default_rng(seed)
    assignment: dict[str, str] = {}
    for label in sorted(set(speaker_labels.values())):
        speakers = sorted(s for s, lab in speaker_labels.items() if lab == label)
        speakers = [speakers[i] for i in rng.permutation(len(speakers))]
        counts = _apportion(len(speakers), [fractions[name] for name in SPLITS])
        start = 0
        for name, count in zip(SPLITS, counts):
            for speaker in speakers[start : start + count]:
                assignment[speaker] = name
            start += count
    return assignment


def _apportion(n: int, fractions: list[float]) -> list[int]:
    """Split n items by fractions with largest-remainder rounding (sums to n exactly)."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(int)
    for index in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[index] += 1
    return counts.tolist()


def assign_splits(manifest: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> pd.Series:
    """Split column for a manifest with `speaker_id` and `label` columns (one label per speaker)."""
    speaker_labels = manifest.groupby("speaker_id")["label"].first().to_dict()
    assignment = split_speakers(speaker_labels, fractions, seed)
    return manifest["speaker_id"].map(assignment)
