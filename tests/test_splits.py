import numpy as np
import pandas as pd
import pytest

from spira.data.splits import assign_splits, split_speakers

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _speakers(n_patients: int, n_controls: int) -> dict[str, int]:
    return {f"p{i}": 1 for i in range(n_patients)} | {f"c{i}": 0 for i in range(n_controls)}


def test_every_speaker_in_exactly_one_split_with_stratified_counts():
    assignment = split_speakers(_speakers(60, 60), FRACTIONS, seed=3)
    assert len(assignment) == 120
    for label_prefix in ("p", "c"):
        counts = pd.Series([split for s, split in assignment.items() if s.startswith(label_prefix)]).value_counts()
        assert counts.to_dict() == {"train": 42, "val": 9, "test": 9}


def test_split_is_seeded_and_seed_matters():
    speakers = _speakers(20, 20)
    assert split_speakers(speakers, FRACTIONS, seed=1) == split_speakers(speakers, FRACTIONS, seed=1)
    assert split_speakers(speakers, FRACTIONS, seed=1) != split_speakers(speakers, FRACTIONS, seed=2)


def test_odd_counts_use_largest_remainder_and_keep_both_classes_everywhere():
    assignment = split_speakers(_speakers(7, 8), FRACTIONS, seed=0)
    counts = pd.crosstab(pd.Series(assignment), pd.Series({s: s[0] for s in assignment}))
    assert counts.loc["train"].to_dict() == {"c": 6, "p": 5}
    assert (counts > 0).all().all()
    assert counts.to_numpy().sum() == 15


def test_files_of_one_speaker_never_cross_splits():
    rng = np.random.default_rng(0)
    manifest = pd.DataFrame({"speaker_id": [f"s{i // 3}" for i in range(90)]})
    manifest["label"] = manifest["speaker_id"].map(lambda s: int(s[1:]) % 2)
    manifest = manifest.sample(frac=1.0, random_state=1)
    splits = assign_splits(manifest, FRACTIONS, seed=int(rng.integers(100)))
    assert manifest.assign(split=splits).groupby("speaker_id")["split"].nunique().max() == 1


def test_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        split_speakers(_speakers(2, 2), {"train": 0.8, "val": 0.15, "test": 0.15}, seed=0)
