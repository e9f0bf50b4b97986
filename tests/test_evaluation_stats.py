"""Threshold rules, speaker-level bootstrap intervals and calibration on hand-made scores with known answers."""

import math
from functools import partial

import numpy as np
import pandas as pd
import pytest

from spira.evaluation.bootstrap import INTERVAL_METRICS, _metrics_from_counts, _per_speaker, speaker_bootstrap
from spira.evaluation.calibration import apply_temperature, brier_score, expected_calibration_error, fit_temperature, reliability_table
from spira.evaluation.evaluate import EvaluationSettings, interval_metrics, set_metrics
from spira.evaluation.report import participant_counts, render_report
from spira.evaluation.subgroups import age_band, subgroup_metrics, subgroup_table
from spira.evaluation.thresholds import choose_threshold, parse_rule
from spira.metrics import binary_metrics

# Validation scores: controls 0.1 0.2 0.3 0.62, patients 0.4 0.7 0.8 0.9.
VAL_LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
VAL_SCORES = np.array([0.1, 0.2, 0.3, 0.62, 0.4, 0.7, 0.8, 0.9])


def test_rules_parse_and_bad_rules_say_what_is_expected():
    assert parse_rule(0.4) == ("fixed", 0.4)
    assert parse_rule("0.3") == ("fixed", 0.3)
    assert parse_rule("sensitivity:0.90") == ("sensitivity", 0.9)
    for bad in ("youden:0.9", "sensitivity", "sensitivity:1.5", "specificity:x", "median", 1.5):
        with pytest.raises(ValueError, match="evaluate.threshold"):
            parse_rule(bad)


def test_youden_takes_the_best_gap_nearest_one_half():
    # The midpoints 0.35 and (0.62 + 0.7) / 2 = 0.66 both give J = 0.75; 0.35 is nearer 0.5.
    choice = choose_threshold("youden", VAL_LABELS, VAL_SCORES)
    assert choice.threshold == pytest.approx(0.35)
    assert choice.validation_sensitivity + choice.validation_specificity == pytest.approx(1.75)
    assert choice.validation_files == 8


def test_sensitivity_and_specificity_targets():
    # Sensitivity 1.0 needs every patient called: threshold below 0.4 -> the best specificity there is 3/4 at 0.35.
    choice = choose_threshold("sensitivity:1.0", VAL_LABELS, VAL_SCORES)
    assert choice.threshold == pytest.approx(0.35)
    assert (choice.validation_sensitivity, choice.validation_specificity) == (1.0, 0.75)
    # Specificity 1.0: every control below the threshold -> above 0.62; best sensitivity 3/4 at 0.66.
    choice = choose_threshold("specificity:1.0", VAL_LABELS, VAL_SCORES)
    assert choice.threshold == pytest.approx(0.66)
    # Sensitivity 0.75 allows the threshold 0.66 too, with specificity 1.0.
    assert choose_threshold("sensitivity:0.75", VAL_LABELS, VAL_SCORES).threshold == pytest.approx(0.66)
    assert (choice.validation_sensitivity, choice.validation_specificity) == (0.75, 1.0)
    # A fixed number is used as is, without validation numbers.
    assert choose_threshold(0.42, VAL_LABELS, VAL_SCORES).record()["threshold"] == 0.42


def test_a_rule_needs_both_classes_in_validation():
    with pytest.raises(ValueError, match="both classes"):
        choose_threshold("youden", np.array([1, 1]), np.array([0.2, 0.8]))


def test_bootstrap_sums_reproduce_the_point_metrics():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 40)
    scores = np.round(rng.random(40), 1)  # ties on purpose: AUROC counts them half
    speakers = rng.integers(0, 12, 40).astype(str)
    _, counts = _per_speaker(labels, scores, speakers, 0.5)
    from_sums = _metrics_from_counts(np.ones((1, counts["tp"].size)), counts)
    expected = binary_metrics(labels, scores, 0.5)
    for name in INTERVAL_METRICS:
        assert from_sums[name][0] == pytest.approx(expected[name]), name


def test_perfectly_separated_scores_give_degenerate_intervals():
    labels = np.array([0, 0, 0, 1, 1, 1] * 3)
    scores = np.where(labels == 1, 0.9, 0.1)
    intervals = speaker_bootstrap(labels, scores, np.repeat(np.arange(9), 2).astype(str), 0.5, resamples=2000, seed=0)
    for name in INTERVAL_METRICS:
        assert intervals[name] == (1.0, 1.0), name


def test_speakers_are_resampled_whole_not_file_by_file():
    # Speaker a: three patient files all right; speaker b: three control files all wrong.
    # Resampling speakers, accuracy is 0, 1/2 or 1 with probabilities 1/4, 1/2, 1/4: the 95% interval is [0, 1].
    labels = np.array([1, 1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.9, 0.9, 0.8, 0.8, 0.8])
    intervals = speaker_bootstrap(labels, scores, np.array(list("aaabbb")), 0.5, resamples=4000, seed=1)
    assert intervals["accuracy"] == (0.0, 1.0)
    # Sensitivity is 1 whenever a is drawn (undefined otherwise); specificity 0 whenever b is drawn.
    assert intervals["sensitivity"] == (1.0, 1.0) and intervals["specificity"] == (0.0, 0.0)
    # F1 needs a patient in the resample: with a, it is 2*3 / (2*3 + 3 false positives) or 1 (a alone).
    assert intervals["f1"] == (pytest.approx(2 / 3), 1.0)


def test_bootstrap_interval_matches_the_binomial_for_independent_speakers():
    # One file per speaker, 30 of 40 right: the bootstrap accuracy is Binomial(40, 0.75) / 40.
    labels = np.array([1] * 20 + [0] * 20)
    scores = np.array([0.9] * 15 + [0.1] * 5 + [0.1] * 15 + [0.9] * 5)
    low, high = speaker_bootstrap(labels, scores, np.arange(40).astype(str), 0.5, resamples=20000, seed=2)["accuracy"]
    from scipy.stats import binom

    assert low == pytest.approx(binom.ppf(0.025, 40, 0.75) / 40, abs=0.026)
    assert high == pytest.approx(binom.ppf(0.975, 40, 0.75) / 40, abs=0.026)
    # Seeded: the same call gives the same interval.
    again = speaker_bootstrap(labels, scores, np.arange(40).astype(str), 0.5, resamples=20000, seed=2)["accuracy"]
    assert again == (low, high)


def test_ece_brier_and_reliability_on_a_known_case():
    # Bin [0.2, 0.3): two files at 0.2, one patient -> |0.5 - 0.2| = 0.3; bin [0.8, 0.9): two at 0.8, both patients -> 0.2.
    labels, prob = np.array([0, 1, 1, 1]), np.array([0.2, 0.2, 0.8, 0.8])
    assert expected_calibration_error(labels, prob, bins=10) == pytest.approx((2 * 0.3 + 2 * 0.2) / 4)
    assert brier_score(labels, prob) == pytest.approx((0.04 + 0.64 + 0.04 + 0.04) / 4)
    table = reliability_table(labels, prob, bins=10)
    assert table.to_dict("list") == {"predicted": [0.2, 0.8], "observed": [0.5, 1.0], "count": [2, 2]}
    # Perfectly calibrated: ECE 0.
    assert expected_calibration_error(np.array([0, 1]), np.array([0.5, 0.5]), bins=10) == 0.0


def test_temperature_scaling_softens_overconfident_predictions_and_keeps_order():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 400)
    true_prob = np.where(labels == 1, 0.7, 0.3)
    overconfident = np.where(rng.random(400) < true_prob, 0.99, 0.01)  # right 70% of the time, says 99%
    temperature = fit_temperature(labels, overconfident)
    assert temperature > 2
    calibrated = apply_temperature(overconfident, temperature)
    assert np.array_equal(np.argsort(calibrated, kind="stable"), np.argsort(overconfident, kind="stable"))
    assert expected_calibration_error(labels, calibrated, 10) < expected_calibration_error(labels, overconfident, 10) / 3


def test_test_set_metrics_carry_intervals_and_the_half_threshold_figures():
    units = pd.DataFrame({"speaker_id": list("aabbccdd"), "actual": [1, 1, 0, 0, 1, 1, 0, 0], "probability": [0.9, 0.45, 0.2, 0.3, 0.8, 0.7, 0.42, 0.1]})
    metrics = set_metrics(units, 0.4, EvaluationSettings(threshold="youden", batch_size=8, resamples=2000))
    assert metrics["threshold"] == 0.4 and metrics["accuracy"] == pytest.approx(7 / 8) and metrics["accuracy_at_0.5"] == pytest.approx(7 / 8)
    assert metrics["sensitivity"] == 1.0 and metrics["sensitivity_at_0.5"] == 0.75
    for name in INTERVAL_METRICS:
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"], name
    assert (metrics["n_files"], metrics["n_speakers"]) == (8, 4)


def test_evaluation_settings_refuse_speaker_decisions_and_unknown_options_by_name():
    with pytest.raises(ValueError, match="evaluate.threshold=sensitivity:2"):
        EvaluationSettings(threshold="sensitivity:2", batch_size=1)
    # Served models decide one recording at a time: a speaker-level threshold could not be served.
    with pytest.raises(ValueError, match=r"evaluate.aggregate=speaker: export, the gate, `spira predict` and `spira serve` decide one recording"):
        EvaluationSettings(threshold=0.5, batch_size=1, aggregate="speaker")
    with pytest.raises(ValueError, match=r"evaluate.aggregate=recording: expected one of \['file'\]"):
        EvaluationSettings(threshold=0.5, batch_size=1, aggregate="recording")
    with pytest.raises(ValueError, match=r"evaluate.calibration=platt: expected one of"):
        EvaluationSettings(threshold=0.5, batch_size=1, calibration="platt")
    assert EvaluationSettings(threshold=0.5, batch_size=1, calibration="temperature").calibration == "temperature"


def test_age_bands_and_subgroups_with_counts_only_below_the_minimum():
    manifest = pd.DataFrame(
        {
            "file_id": [f"f{i}" for i in range(14)],
            "speaker_id": [f"s{i // 2}" for i in range(14)],
            "sex": ["F"] * 12 + ["M"] * 2,
            "age": [30, 30, 45, 45, 60, 60, 70, 70, 25, 25, 50, 50, None, None],
        }
    )
    assert age_band(manifest["age"], [40, 60]).tolist()[::2] == ["<40", "40-60", ">=60", ">=60", "<40", "40-60", "unknown"]
    table = subgroup_table(manifest, [40, 60])
    units = pd.DataFrame({"file_id": manifest["file_id"], "speaker_id": manifest["speaker_id"], "actual": [1, 1, 0, 0] * 3 + [1, 1],
                          "probability": [0.9, 0.8, 0.2, 0.3] * 3 + [0.4, 0.6]})
    settings = EvaluationSettings(threshold=0.5, batch_size=1, resamples=500)
    report = subgroup_metrics(units, table, 10, partial(interval_metrics, threshold=0.5, settings=settings))
    women = report["sex"]["F"]
    assert (women["n_files"], women["n_speakers"], women["n_patients"], women["n_controls"]) == (12, 6, 6, 6)
    assert women["accuracy"] == 1.0 and women["accuracy_ci_low"] == 1.0 and "brier" not in women
    assert report["sex"]["M"] == {"n_files": 2, "n_speakers": 1, "n_patients": 2, "n_controls": 0,
                                  "status": "counts only: fewer than 10 files or one class"}
    assert report["age_band"]["unknown"]["n_files"] == 2


def test_the_file_format_gives_one_subgroup_per_format():
    manifest = pd.DataFrame(
        {
            "file_id": [f"f{i}" for i in range(24)],
            "speaker_id": [f"s{i // 2}" for i in range(24)],
            "source_format": ["FLAC"] * 12 + ["WAV"] * 12,
        }
    )
    units = pd.DataFrame({"file_id": manifest["file_id"], "speaker_id": manifest["speaker_id"], "actual": [1, 1, 0, 0] * 6,
                          "probability": [0.9, 0.8, 0.2, 0.3] * 3 + [0.6, 0.4, 0.7, 0.1] * 3})
    settings = EvaluationSettings(threshold=0.5, batch_size=1, resamples=200)
    report = subgroup_metrics(units, subgroup_table(manifest, [40, 60]), 10, partial(interval_metrics, threshold=0.5, settings=settings))
    assert sorted(report["format"]) == ["FLAC", "WAV"]
    assert (report["format"]["FLAC"]["n_files"], report["format"]["FLAC"]["accuracy"]) == (12, 1.0)
    assert (report["format"]["WAV"]["n_files"], report["format"]["WAV"]["accuracy"]) == (12, 0.5)
    # One format everywhere (the demo writes WAV only): a single subgroup holding every file.
    single = subgroup_metrics(units, subgroup_table(manifest.assign(source_format="WAV"), [40, 60]), 10,
                              partial(interval_metrics, threshold=0.5, settings=settings))  # fmt: skip
    assert list(single["format"]) == ["WAV"] and single["format"]["WAV"]["n_files"] == 24


def test_report_states_the_threshold_intervals_and_a_skipped_noisy_test():
    manifest = pd.DataFrame({"split": ["train", "train", "test", "test"], "label": [1, 0, 1, 0], "speaker_id": list("abcd")})
    units = pd.DataFrame({"speaker_id": list("aabbccdd"), "actual": [1, 1, 0, 0, 1, 1, 0, 0], "probability": [0.9, 0.45, 0.2, 0.3, 0.8, 0.7, 0.42, 0.1]})
    metrics = set_metrics(units, 0.4, EvaluationSettings(threshold="youden", batch_size=8, resamples=200))
    decision = choose_threshold("youden", VAL_LABELS, VAL_SCORES).record() | {
        "validation_sets": ["val"], "aggregate": "file", "calibration": "none", "temperature": None}
    audit = {"warn_auroc": 0.7, "properties": {"noise_floor": {"auroc": 0.97, "flagged": True}, "source": {"auroc": None, "flagged": False}},
             "combined": {"auroc": 0.9, "flagged": True}}
    text = render_report(participant_counts(manifest), None, decision, {"test_clean": metrics, "test_noisy": {"n_files": 0, "status": "not evaluated: no noise"}},
                         {}, audit, ["roc_test_clean.png"])
    assert "| test | patients | 1 | 1 |" in text
    assert "Threshold 0.350, chosen by the rule `youden` on 8 validation files (val)" in text
    assert f"| accuracy | {metrics['accuracy']:.3f} ({metrics['accuracy_ci_low']:.3f}–{metrics['accuracy_ci_high']:.3f}) |" in text
    assert "**test_noisy: not evaluated: no noise.**" in text
    assert "| noise_floor | 0.970 | **flagged** |" in text and "| source | one value everywhere |  |" in text
    assert "![roc_test_clean.png](figures/roc_test_clean.png)" in text
