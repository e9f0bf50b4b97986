"""The test split is read once, at the end: nothing chosen before it depends on it.

Train and evaluate run twice on the shared smoke run's prepared data: once on its
features, once on a copy whose test sets have other audio (random windows) and
swapped labels. The selected checkpoint, its weights, every selection figure and
the chosen threshold must be identical; only the test figures may move.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import PipelineRun
from spira.config import load_params
from spira.features.store import FEATURES_FILE, INDEX_FILE
from spira.layout import Layout
from spira.pipeline.model import RunOutputs, evaluate_model, fit_model, read_json
from spira.training.checkpoint import load_module
from spira.training.fit import checkpoint_path

pytestmark = pytest.mark.slow
TEST_SETS = ("test", "test_noisy")


def tamper_with_the_test_sets(features: Path) -> None:
    """Other audio (random windows of the same shape) and every label swapped, in both test sets."""
    rng = np.random.default_rng(0)
    for split in TEST_SETS:
        windows = np.load(features / FEATURES_FILE.format(split=split))
        np.save(features / FEATURES_FILE.format(split=split), rng.normal(windows.mean(), windows.std(), windows.shape).astype(np.float32))
        index = pd.read_csv(features / INDEX_FILE.format(split=split), dtype={"file_id": str, "speaker_id": str})
        index.assign(label=1 - index["label"]).to_csv(features / INDEX_FILE.format(split=split), index=False)


def train_and_evaluate_on(repo: Path, features: Path, out: Path) -> tuple[dict, dict, dict, dict[str, torch.Tensor]]:
    cfg = load_params(repo / "params.yaml")
    layout = Layout(prepared=repo / "data/prepared", quarantine=repo / "data/quarantine", features=features,
                    checkpoints=out / "checkpoints", resume=out / "resume", audit=repo / "metrics/audit.json")  # fmt: skip
    outputs = RunOutputs(train_metrics=out / "train.json", test_metrics=out / "test.json", report_dir=out / "eval",
                         subgroup_metrics=out / "subgroups.json", machine_record=out / "machine.json", layout=layout)  # fmt: skip
    summary = fit_model(cfg, outputs)
    evaluate_model(cfg, outputs)
    weights = load_module(checkpoint_path(cfg.callbacks, layout.checkpoints), list(cfg.checkpoint.allowed_targets)).state_dict()
    test = read_json(outputs.test_metrics)
    return summary, test.pop("threshold"), test, weights


def test_threshold_checkpoint_and_selection_figures_ignore_the_test_split(smoke_pipeline: PipelineRun, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the loggers write under the working directory
    repo = smoke_pipeline.repo
    tampered = tmp_path / "tampered-features"
    shutil.copytree(repo / "data/features", tampered)
    tamper_with_the_test_sets(tampered)

    summary, decision, test, weights = train_and_evaluate_on(repo, repo / "data/features", tmp_path / "real")
    summary_t, decision_t, test_t, weights_t = train_and_evaluate_on(repo, tampered, tmp_path / "tampered")

    # The tampering reached the test figures ...
    assert test_t["test_clean"]["auroc"] != test["test_clean"]["auroc"]
    # ... and nothing chosen before them: the selected epoch and every validation figure,
    assert summary_t == summary and "val/file_auroc" in summary
    # the weights of the selected checkpoint,
    assert weights_t.keys() == weights.keys() and all(torch.equal(weights_t[name], weights[name]) for name in weights)
    # and the threshold with the validation figures that chose it.
    assert decision_t == decision and decision["validation_sets"] == ["val"]
