"""Speaker-disjoint, class-stratified train/val/test splits, and the split of the ward-noise set by recording.

Two ways: `split_speakers` shuffles the speakers of each class with a seed and
cuts the list by the fractions (exact counts, but adding one speaker can move
every other; the demo synthesiser uses it for its metadata files), and
`hash_split_speakers`, what prepare uses for `split.strategy: speaker`: a
speaker's split is a pure function of its salted id and the split config, so
adding recordings (or correcting a label) never moves an existing speaker and
an old test set stays a subset of the new one. Its price is that the class balance of a split follows
the fractions only on average; `split_balance` says how far it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from spira.data import SPLITS

# Noise split of every recording when there are too few to split: all splits share them.
SHARED_NOISE = "shared"
MIN_NOISE_RECORDINGS = len(SPLITS)


def split_speakers(speaker_labels: Mapping[str, int], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign every speaker to one split, stratified by the speaker's class.

    Speakers of each class are shuffled with `seed` and cut by `fractions`
    (largest-remainder rounding), so every split gets its share of both
    classes and no speaker appears in two splits.
    """
    check_fractions(fractions)
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


def check_fractions(fractions: Mapping[str, float]) -> None:
    total = sum(fractions[name] for name in SPLITS)
    if not np.isclose(total, 1.0):
        raise ValueError(f"split fractions must sum to 1, got {dict(fractions)} (sum {total})")


def speaker_position(speaker_id: str, seed: int) -> float:
    """A number in [0, 1) fixed by the speaker's (salted) id and the seed alone.

    Not by its label: a corrected label keeps the speaker in its split."""
    digest = hashlib.sha256(f"{seed}\x00{speaker_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def hash_split_speakers(speaker_labels: Mapping[str, int], fractions: Mapping[str, float], seed: int) -> dict[str, str]:
    """Assign every speaker to the split whose cumulative-fraction interval holds its position.

    Stratified in expectation: the position ignores the class, so each class's
    speakers land in the splits with the fractions' probabilities."""
    check_fractions(fractions)
    bounds = np.cumsum([fractions[name] for name in SPLITS])
    return {
        speaker: SPLITS[min(int(np.searchsorted(bounds, speaker_position(speaker, seed), side="right")), len(SPLITS) - 1)]
        for speaker in speaker_labels
    }


def split_balance(speaker_labels: Mapping[str, int], assignment: Mapping[str, str], fractions: Mapping[str, float]) -> dict[str, dict]:
    """Per split: how many speakers of each class it holds, the share of that class's
    speakers it got, and the largest distance of those shares from the split's fraction."""
    balance = {}
    labels = sorted(set(speaker_labels.values()))
    totals = {label: sum(1 for lab in speaker_labels.values() if lab == label) for label in labels}
    for name in SPLITS:
        counts = {label: sum(1 for s, lab in speaker_labels.items() if lab == label and assignment[s] == name) for label in labels}
        shares = {label: counts[label] / totals[label] for label in labels}
        balance[name] = {
            "fraction": float(fractions[name]),
            "speakers": {str(label): counts[label] for label in labels},
            "share_of_class": {str(label): round(shares[label], 4) for label in labels},
            "max_distance": round(max(abs(shares[label] - float(fractions[name])) for label in labels), 4) if labels else 0.0,
        }
    return balance


def seed_with_both_classes_everywhere(speaker_labels: Mapping[str, int], fractions: Mapping[str, float], start: int, tries: int = 1000) -> int | None:
    """The first seed from `start` whose hash split gives every split both classes (None if none of `tries`)."""
    labels = set(speaker_labels.values())
    for seed in range(start, start + tries):
        assignment = hash_split_speakers(speaker_labels, fractions, seed)
        if all({lab for s, lab in speaker_labels.items() if assignment[s] == name} == labels for name in SPLITS):
            return seed
    return None


def _apportion(n: int, fractions: list[float]) -> list[int]:
    """Split n items by fractions with largest-remainder rounding (sums to n exactly)."""
    raw = np.asarray(fractions) * n
    counts = np.floor(raw).astype(int)
    for index in np.argsort(-(raw - counts), kind="stable")[: n - counts.sum()]:
        counts[index] += 1
    return counts.tolist()


def assign_splits(manifest: pd.DataFrame, fractions: Mapping[str, float], seed: int) -> tuple[pd.Series, dict[str, dict]]:
    """Split column for a manifest with `speaker_id` and `label` columns (one label per speaker),
    by `hash_split_speakers`, and the splits' class balance (`split_balance`)."""
    speaker_labels = manifest.groupby("speaker_id")["label"].first().to_dict()
    assignment = hash_split_speakers(speaker_labels, fractions, seed)
    return manifest["speaker_id"].map(assignment), split_balance(speaker_labels, assignment, fractions)


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
