"""The one threshold reader, the one scoring path of evaluate and the gate, and the gate's settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from spira.errors import UserError
from spira.evaluation.bootstrap import paired_auroc_difference, speaker_bootstrap
from spira.evaluation.evaluate import EvaluationSettings, point_metrics, score_split, set_metrics
from spira.evaluation.thresholds import EvaluationError, describe_decision, read_decision
from spira.features.store import FEATURES_FILE, INDEX_COLUMNS, INDEX_FILE
from spira.registry.promotion import GateRuleError, GateSettings
from spira.serving.contract import calibrate

TUNED = {"rule": "youden", "threshold": 0.42, "validation_sensitivity": 0.9, "validation_specificity": 0.8,
         "validation_files": 40, "validation_sets": ["val", "val_noisy"], "aggregate": "file", "calibration": "none", "temperature": None}  # fmt: skip


def write_test_metrics(folder: Path, decision: dict) -> Path:
    path = folder / "test.json"
    path.write_text(json.dumps({"threshold": decision, "test_clean": {"auroc": 0.9}}))
    return path


def test_read_decision_returns_the_record_evaluate_wrote(tmp_path):
    assert read_decision(write_test_metrics(tmp_path, TUNED)) == TUNED


def test_read_decision_refuses_a_missing_evaluation_naming_the_file_and_keeps_a_temperature(tmp_path):
    with pytest.raises(EvaluationError, match=r"test.json: no evaluation yet") as missing:
        read_decision(tmp_path / "test.json")
    assert isinstance(missing.value, UserError) and str(tmp_path) in str(missing.value)
    calibrated = {**TUNED, "calibration": "temperature", "temperature": 1.3}
    assert read_decision(write_test_metrics(tmp_path, calibrated))["temperature"] == 1.3


def test_describe_decision_says_how_the_threshold_was_chosen():
    assert describe_decision(TUNED) == (
        "chosen by the rule youden on 40 validation files (val, val_noisy): validation sensitivity 0.9, specificity 0.8"
    )
    fixed = {**TUNED, "rule": "fixed", "validation_sensitivity": None}
    assert describe_decision(fixed) == "fixed in the config (evaluate.threshold=fixed), not tuned on data"


class FirstCoefficient(torch.nn.Module):
    """A window classifier whose logit is the window's first coefficient: known probabilities."""

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return windows[:, 0, 0]


@pytest.fixture
def featurized_test_split(tmp_path: Path) -> Path:
    """Six speakers, two files each, two windows per file; patients' logits higher but overlapping."""
    rng = np.random.default_rng(0)
    rows, logits = [], []
    for speaker in range(6):
        label = speaker % 2
        for file in range(2):
            for window in range(2):
                rows.append({"file_id": f"f{speaker}_{file}", "window": window, "start_seconds": window * 4.0, "padded_seconds": 0.0,
                             "label": label, "speaker_id": f"s{speaker}"})  # fmt: skip
                logits.append(rng.normal(label - 0.5, 1.0))
    windows = np.zeros((len(rows), 3, 2), dtype=np.float32)
    windows[:, 0, 0] = logits
    np.save(tmp_path / FEATURES_FILE.format(split="test"), windows)
    pd.DataFrame(rows, columns=INDEX_COLUMNS).to_csv(tmp_path / INDEX_FILE.format(split="test"), index=False)
    return tmp_path


def test_the_gate_and_evaluate_score_a_split_alike(featurized_test_split):
    settings = EvaluationSettings(threshold=0.5, batch_size=5, resamples=200)
    units = score_split(FirstCoefficient(), featurized_test_split, "test", settings.batch_size)
    windows = np.load(featurized_test_split / "test.npy")[:, 0, 0]
    expected = pd.Series(1 / (1 + np.exp(-windows.astype(np.float64)))).groupby(np.arange(windows.size) // 2).mean().to_numpy()
    assert units["file_id"].tolist() == [f"f{s}_{f}" for s in range(6) for f in range(2)]
    np.testing.assert_allclose(units["probability"], expected, rtol=1e-6)
    gate_figures = point_metrics(units, 0.5)
    evaluate_figures = set_metrics(units, 0.5, settings)
    assert gate_figures["auroc"] == pytest.approx(roc_auc_score(units["actual"], units["probability"]), abs=1e-6)
    assert {name: evaluate_figures[name] for name in gate_figures} == gate_figures
    # Calibrated: the contract's function on the file means, which `spira predict` applies too.
    calibrated = score_split(FirstCoefficient(), featurized_test_split, "test", settings.batch_size, temperature=2.0)
    logit = np.log(expected / (1 - expected))
    np.testing.assert_allclose(calibrated["probability"], 1 / (1 + np.exp(-logit / 2.0)), rtol=1e-6)
    assert [calibrate(p, {"temperature": 2.0}) for p in expected] == pytest.approx(calibrated["probability"].tolist(), rel=1e-6)
    assert calibrate(0.3, {"temperature": None}) == 0.3


def test_intervals_and_the_paired_difference_draw_the_same_speaker_resamples():
    # Against a champion that scores every file 0.5 (AUROC 0.5 in every resample), the paired
    # difference of a resample is the challenger's AUROC minus 0.5: the same interval, shifted.
    rng = np.random.default_rng(4)
    speakers = np.repeat(np.arange(30), 3).astype(str)
    labels = np.repeat(np.arange(30) % 2, 3)
    scores = rng.random(labels.size) * 0.7 + labels * 0.3
    low, high = speaker_bootstrap(labels, scores, speakers, 0.5, resamples=500, seed=7)["auroc"]
    paired = paired_auroc_difference(labels, scores, np.full(labels.size, 0.5), speakers, resamples=500, seed=7)
    assert (paired.ci_low, paired.ci_high) == pytest.approx((low - 0.5, high - 0.5), abs=1e-12)


def test_gate_settings_refuse_an_unknown_floor_as_a_user_error():
    settings = dict(artifact="spira-model", margin=0.05, confidence=0.95, resamples=100, seed=0)
    assert GateSettings(floors={"test_auroc": 0.85}, **settings).floors == {"test_auroc": 0.85}
    with pytest.raises(GateRuleError, match="gate.floors.test_f1: unknown floor; known: test_auroc") as error:
        GateSettings(floors={"test_f1": 0.5}, **settings)
    assert isinstance(error.value, UserError)
