"""The gate's statistics and rules on hand-made figures (no training)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from spira.evaluation.bootstrap import paired_auroc_difference
from spira.registry.promotion import decide, floor_rules, gate_markdown, non_inferiority_rule


def _scores(n_speakers: int = 60, files_per_speaker: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(n_speakers), files_per_speaker)
    labels = speakers % 2
    speaker_effect = rng.normal(0, 0.7, n_speakers)[speakers]
    good = labels + speaker_effect + rng.normal(0, 0.5, len(labels))
    # The worse model errs per speaker (all of a speaker's files alike): files of a speaker are not independent.
    worse = labels + speaker_effect + rng.normal(0, 2.0, n_speakers)[speakers]
    return labels, good, worse, np.array([f"spk{s}" for s in speakers])


def test_paired_bootstrap_difference_matches_sklearn_and_is_seeded():
    labels, good, worse, speakers = _scores(n_speakers=200)
    result = paired_auroc_difference(labels, good, worse, speakers, resamples=2000, seed=1)
    assert result.difference == pytest.approx(roc_auc_score(labels, good) - roc_auc_score(labels, worse), abs=1e-12)
    assert result.ci_low < result.difference < result.ci_high
    assert result.ci_low > 0  # the clearly better model is better with 95% confidence
    assert result.speakers == 200 and result.resamples_used == 2000
    assert result == paired_auroc_difference(labels, good, worse, speakers, resamples=2000, seed=1)
    assert result != paired_auroc_difference(labels, good, worse, speakers, resamples=2000, seed=2)


def test_a_model_against_itself_differs_by_exactly_zero_in_every_resample():
    labels, good, _, speakers = _scores()
    result = paired_auroc_difference(labels, good, good, speakers, resamples=2000, seed=0)
    assert (result.difference, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)


def test_resampling_is_by_speaker_not_by_file():
    # Speakers whose files agree among themselves: resampling files would understate the spread.
    labels, good, worse, speakers = _scores(n_speakers=30, files_per_speaker=8)
    by_speaker = paired_auroc_difference(labels, good, worse, speakers, resamples=2000, seed=0)
    by_file = paired_auroc_difference(labels, good, worse, np.arange(len(labels)), resamples=2000, seed=0)
    assert by_speaker.ci_high - by_speaker.ci_low > 1.3 * (by_file.ci_high - by_file.ci_low)


def test_one_class_test_set_is_a_clear_error():
    with pytest.raises(ValueError, match="needs patients and controls"):
        paired_auroc_difference(np.ones(4), np.ones(4), np.ones(4), np.arange(4))


CHALLENGER = {"test_clean": {"auroc": 0.9, "sensitivity": 0.7, "specificity": 0.8, "balanced_accuracy": 0.75, "n_files": 40},
              "test_noisy": {"auroc": float("nan"), "sensitivity": 0.6, "specificity": 0.8, "balanced_accuracy": 0.7, "n_files": 40},
              "data_version": "abc123.dir"}  # fmt: skip


def test_floors_and_non_inferiority_decide_and_name_the_failed_rules():
    floors = floor_rules(CHALLENGER, {"test_auroc": 0.85, "test_sensitivity": 0.8, "noisy_test_auroc": 0.8})
    assert [(r.rule, r.value, r.passed) for r in floors][:2] == [("floor test_auroc", 0.9, True), ("floor test_sensitivity", 0.7, False)]
    assert not floors[2].passed  # a NaN figure fails its floor
    assert non_inferiority_rule(-0.04, 0.05, 0.95).passed and not non_inferiority_rule(-0.06, 0.05, 0.95).passed
    result = decide([*floors, non_inferiority_rule(-0.06, 0.05, 0.95)])
    assert result["decision"] == "fail"
    assert result["failed_rules"] == ["floor test_sensitivity", "floor noisy_test_auroc", "non-inferiority"]
    assert decide(floor_rules(CHALLENGER, {"test_auroc": 0.85}))["decision"] == "pass"
    with pytest.raises(ValueError, match="gate.floors.test_f1: unknown floor"):
        floor_rules(CHALLENGER, {"test_f1": 0.5})


def test_report_shows_every_rule_and_both_models():
    result = decide(floor_rules(CHALLENGER, {"test_auroc": 0.85, "test_sensitivity": 0.8}))
    result |= {"threshold": 0.5, "challenger": CHALLENGER, "champion": {**CHALLENGER, "version": "v1.0.0"},
               "non_inferiority": {"difference": 0.01, "ci_low": -0.03, "ci_high": 0.05, "confidence": 0.95,
                                   "resamples": 2000, "resamples_used": 1990, "speakers": 20}}  # fmt: skip
    report = gate_markdown(result)
    assert report.startswith("# Promotion gate: FAIL")
    assert "| challenger test_clean sensitivity >= 0.8 | 0.700 | 0.8 | **FAIL** |" in report
    assert "Champion: `v1.0.0`" in report and "probability is >= 0.5" in report
    assert "+0.010, 95% interval [-0.030, +0.050] (1990 of 2000 speaker resamples of 20 speakers)" in report


INTERVALS = {"test_clean": {"auroc": 0.9, "auroc_ci_low": 0.72, "sensitivity": 0.8, "sensitivity_ci_low": 0.45, "n_files": 54,
                            "n_patients_speakers": 9, "n_controls_speakers": 9},
             "test_noisy": {"auroc": 0.8, "auroc_ci_low": 0.61, "n_files": 54, "n_patients_speakers": 9, "n_controls_speakers": 9}}  # fmt: skip
FLOORS = {"test_auroc": 0.6, "test_sensitivity": 0.5, "noisy_test_auroc": 0.55}


def test_floors_read_the_statistic_the_gate_is_set_to():
    point = floor_rules(INTERVALS, FLOORS, "point", 5)
    assert [(r.value, r.outcome) for r in point] == [(0.9, "pass"), (0.8, "pass"), (0.8, "pass")]
    lower = floor_rules(INTERVALS, FLOORS, "lower", 5)
    # The sensitivity's point estimate clears 0.5, its interval's lower bound does not.
    assert [(r.value, r.outcome) for r in lower] == [(0.72, "pass"), (0.45, "fail"), (0.61, "pass")]
    assert "sensitivity (lower bound of its interval) >= 0.5" in lower[1].explanation
    assert decide(lower)["decision"] == "fail" and decide(point)["decision"] == "pass"


def test_a_floor_on_too_few_speakers_of_its_class_is_insufficient_evidence():
    few_patients = {name: {**figures, "n_patients_speakers": 3} for name, figures in INTERVALS.items()}
    rules = floor_rules(few_patients, FLOORS, "lower", 5)
    # Every floor reads the patients (AUROC both classes, sensitivity the patients).
    assert [r.outcome for r in rules] == ["insufficient evidence"] * 3
    assert "test_clean has 3 patients speaker(s), and a floor on sensitivity needs at least 5 of each (gate.min_speakers_per_class)" in rules[1].explanation
    result = decide(rules)
    assert result["decision"] == "insufficient evidence" and result["failed_rules"] == [] and len(result["undecided_rules"]) == 3
    assert "**insufficient evidence**" in gate_markdown(result | {"threshold": 0.5, "challenger": {**few_patients, "data_version": "x"},
                                                                 "champion": None, "non_inferiority": None})  # fmt: skip
    # A floor that reads only controls is decided on the controls alone.
    few_patients["test_clean"] |= {"specificity": 0.9, "specificity_ci_low": 0.7}
    assert floor_rules(few_patients, {"test_specificity": 0.6}, "lower", 5)[0].outcome == "pass"
    # A failing rule outweighs an undecided one.
    mixed = [*rules, *floor_rules(INTERVALS, {"test_auroc": 0.95}, "lower", 5)]
    assert decide(mixed)["decision"] == "fail"


def test_an_unknown_statistic_is_refused():
    from spira.registry.promotion import GateSettings

    with pytest.raises(ValueError, match="gate.statistic: 'median' is not one of point, lower"):
        GateSettings(floors={}, artifact="m", margin=0.05, confidence=0.95, resamples=10, seed=0, statistic="median")
