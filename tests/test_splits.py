import numpy as np
import pandas as pd
import pytest

from spira.data.splits import SPLITS, assign_splits, hash_split_speakers, seed_with_both_classes_everywhere, split_balance, split_speakers

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
    splits, _ = assign_splits(manifest, FRACTIONS, seed=int(rng.integers(100)))
    assert manifest.assign(split=splits).groupby("speaker_id")["split"].nunique().max() == 1


def test_fractions_must_sum_to_one():
    with pytest.raises(ValueError, match="sum to 1"):
        split_speakers(_speakers(2, 2), {"train": 0.8, "val": 0.15, "test": 0.15}, seed=0)


def test_hash_split_never_moves_an_existing_speaker_when_30_percent_new_speakers_arrive():
    old = _speakers(100, 100)
    new = old | {f"new-p{i}": 1 for i in range(30)} | {f"new-c{i}": 0 for i in range(30)}
    before = hash_split_speakers(old, FRACTIONS, seed=0)
    after = hash_split_speakers(new, FRACTIONS, seed=0)
    assert {s: after[s] for s in old} == before
    # The old test set is a subset of the new one, and the new speakers land in every split.
    assert {s for s, split in before.items() if split == "test"} <= {s for s, split in after.items() if split == "test"}
    assert {after[s] for s in new.keys() - old.keys()} == set(SPLITS)
    # A speaker's split depends on its id and the config alone: alone, it lands where it did in the crowd.
    assert all(hash_split_speakers({s: old[s]}, FRACTIONS, seed=0)[s] == before[s] for s in list(old)[:20])
    assert hash_split_speakers(old, FRACTIONS, seed=1) != before


def test_hash_split_follows_the_fractions_per_class_and_reports_the_distance():
    speakers = _speakers(2000, 1000)
    assignment = hash_split_speakers(speakers, FRACTIONS, seed=0)
    balance = split_balance(speakers, assignment, FRACTIONS)
    for name in SPLITS:
        assert balance[name]["fraction"] == FRACTIONS[name]
        counts = balance[name]["speakers"]
        assert counts == {"0": sum(1 for s in assignment if s[0] == "c" and assignment[s] == name),
                          "1": sum(1 for s in assignment if s[0] == "p" and assignment[s] == name)}
        assert balance[name]["share_of_class"]["1"] == pytest.approx(counts["1"] / 2000, abs=1e-4)
        expected = max(abs(counts["1"] / 2000 - FRACTIONS[name]), abs(counts["0"] / 1000 - FRACTIONS[name]))
        assert balance[name]["max_distance"] == pytest.approx(expected, abs=1e-4)
        assert balance[name]["max_distance"] < 0.04


def test_a_seed_that_fills_every_split_is_found_for_a_small_cohort():
    speakers = _speakers(5, 5)
    seed = seed_with_both_classes_everywhere(speakers, FRACTIONS, start=0)
    assignment = hash_split_speakers(speakers, FRACTIONS, seed=seed)
    for name in SPLITS:
        assert {speakers[s] for s, split in assignment.items() if split == name} == {0, 1}
    assert seed_with_both_classes_everywhere(_speakers(1, 1), FRACTIONS, start=0) is None
