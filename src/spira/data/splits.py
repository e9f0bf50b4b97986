"""Speaker-disjoint, class-stratified train/val/test splits, and the split of the ward-noise set by recording."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")
# Noise split of every recording when there are too few to split: all splits share them.
SHARED_NOISE = "shared"
MIN_NOISE_RECORDINGS = len(SPLITS)


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


def split_noise_recordings(noise_ids: Sequence[str], fractions: Mapping[str, float], seed: int) -> list[str]:
    """The split of each ward-noise recording: training noise, validation noise, test noise.

    Recordings are ordered by a seeded hash of their id (so the split of a
    recording does not depend on the order they are listed in) and cut by
    `fractions`, each split getting at least one. With fewer than three
    recordings every one is SHARED_NOISE: the caller must say so loudly.
    """
    if len(noise_ids) < MIN_NOISE_RECORDINGS:
        return [SHARED_NOISE] * len(noise_ids)
    counts = _apportion(len(noise_ids), [fractions[name] for name in SPLITS])
    for index in range(len(counts)):
        while counts[index] == 0:
            counts[int(np.argmax(counts))] -= 1
            counts[index] += 1
    ranked = sorted(range(len(noise_ids)), key=lambda i: hashlib.sha256(f"{seed}:{noise_ids[i]}".encode()).hexdigest())
    splits = [""] * len(noise_ids)
    names = [name for name, count in zip(SPLITS, counts) for _ in range(count)]
    for position, index in enumerate(ranked):
        splits[index] = names[position]
    return splits
