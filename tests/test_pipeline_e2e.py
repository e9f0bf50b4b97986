"""The real pipeline, through real `dvc repro`, on a tiny generated cohort."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, recall_score, roc_auc_score

from conftest import PipelineRun, committed_copy, run

pytestmark = pytest.mark.slow

STAGES = ("generate_demo", "prepare", "audit", "featurize", "train", "evaluate", "export", "gate")


def _ran(output: str) -> set[str]:
    return {stage for stage in STAGES if f"Running stage '{stage}'" in output}


def recomputed_metrics(predictions: pd.DataFrame, threshold: float) -> dict[str, float]:
    """The test metrics from the per-file predictions alone (scikit-learn; patients are class 1)."""
    actual, probability = predictions["actual"].to_numpy(), predictions["probability"].to_numpy()
    called = (probability >= threshold).astype(int)
    return {
        "accuracy": accuracy_score(actual, called),
        "balanced_accuracy": balanced_accuracy_score(actual, called),
        "f1": f1_score(actual, called, zero_division=0),
        "auroc": roc_auc_score(actual, probability),
        "sensitivity": recall_score(actual, called, pos_label=1),
        "specificity": recall_score(actual, called, pos_label=0),
        "brier": float(((probability - actual) ** 2).mean()),
        "n_files": len(predictions),
    }


def test_dvc_repro_end_to_end(smoke_pipeline: PipelineRun):
    tiny_repo = smoke_pipeline.repo
    assert _ran(smoke_pipeline.output) == set(STAGES)
    # Progress in a log (not a terminal): featurize and evaluate bars, one line per training epoch.
    log = smoke_pipeline.output
    assert "featurize: 100%" in log and "evaluate test_noisy: 100%" in log
    assert re.search(r"epoch 2/2: .*val/file_auroc \d\.\d{4}", log), log[-3000:]

    test_json = json.loads((tiny_repo / "metrics/test.json").read_text())
    metrics = test_json["test_clean"]
    manifest = pd.read_csv(tiny_repo / "data/prepared/manifest.csv")
    test_files = manifest[manifest["split"] == "test"]
    assert metrics["n_files"] == len(test_files) > 0
    threshold = json.loads((tiny_repo / "eval/threshold.json").read_text())
    # metrics/test.json holds what the per-file predictions give at the recorded threshold, on the
    # manifest's test files with their labels (the noisy set: the same files with test noise).
    labels = manifest.set_index("file_id")["label"]
    for test_set in ("test_clean", "test_noisy"):
        predictions = pd.read_csv(tiny_repo / f"eval/predictions_{test_set}.csv")
        assert sorted(predictions["file_id"]) == sorted(test_files["file_id"]), test_set
        assert (predictions["actual"].to_numpy() == labels[predictions["file_id"]].to_numpy()).all(), test_set
        assert test_json[test_set]["threshold"] == threshold["threshold"]
        for name, value in recomputed_metrics(predictions, threshold["threshold"]).items():
            assert test_json[test_set][name] == pytest.approx(value, abs=1e-6), (test_set, name)
    # Every metric has its speaker-level interval; the threshold was chosen on validation (Youden) and is recorded.
    # Both classes are in every test set, so only PPV (no file called a patient) and NPV (none
    # called healthy) can be undefined, and then their intervals are too.
    for test_set in ("test_clean", "test_noisy"):
        values = test_json[test_set]
        called = pd.read_csv(tiny_repo / f"eval/predictions_{test_set}.csv")["predicted"]
        undefined = {"ppv": not called.any(), "npv": called.all()}
        for name in ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1"):
            interval = (values[f"{name}_ci_low"], values[f"{name}_ci_high"])
            if undefined.get(name, False):
                assert math.isnan(values[name]) and all(map(math.isnan, interval)), (test_set, name)
            else:
                assert interval[0] <= values[name] <= interval[1], (test_set, name)
    assert threshold == test_json["threshold"] and threshold["rule"] == "sensitivity:0.80" and threshold["validation_sets"] == ["val"]
    # Chosen on the validation recordings, each counted once.
    assert threshold["validation_files"] == (manifest["split"] == "val").sum()
    assert metrics["threshold"] == threshold["threshold"]

    report = (tiny_repo / "eval/report.md").read_text()
    assert f"chosen by the rule `sensitivity:0.80` on {threshold['validation_files']} validation files (val)" in report
    subgroups = json.loads((tiny_repo / "metrics/subgroups.json").read_text())["test_clean"]
    assert sum(group["n_files"] for group in subgroups["sex"].values()) == metrics["n_files"]

    # The shortcut audit runs before training and the report shows each property's AUROC, flagged as
    # audit.json flags it (on 16 speakers its figures say little; the committed demo run's audit is
    # tests/test_shortcut_audit.py's).
    audit = json.loads((tiny_repo / "metrics/audit.json").read_text())
    audit_section = report.split("## Shortcut audit (before training)", 1)[1]
    for name, result in audit["properties"].items():
        assert f"| {name} |" in audit_section and (result["auroc"] is None or 0 <= result["auroc"] <= 1), name
    assert audit_section.count("**flagged**") == len(audit["flagged"])
    # The demo writes WAV and FLAC, drawn regardless of the label: audited, not flagged, and test subgroups per format.
    assert audit["properties"]["format"]["auroc"] is not None and "format" not in audit["flagged"]
    assert set(subgroups["format"]) <= {"FLAC", "WAV"} and sum(group["n_files"] for group in subgroups["format"].values()) == metrics["n_files"]
    # The noise recordings are split by recording: training, validation and test noise are disjoint.
    noise = pd.read_csv(tiny_repo / "data/prepared/noise_manifest.csv")
    assert sorted(noise["split"]) == ["test", "train", "val"]

    # Speaker-disjoint splits; every split has both classes.
    assert manifest.groupby("speaker_id")["split"].nunique().max() == 1
    assert (manifest.groupby("split")["label"].nunique() == 2).all()
    assert set(manifest["split"]) == {"train", "val", "test"}

    # Prepared audio: 16 kHz mono files named by hashed ids only.
    raw = pd.concat(pd.read_csv(tiny_repo / "data/demo" / f"metadata_{s}.csv") for s in ("train", "eval", "test"))
    assert len(manifest) == len(raw)
    raw_speakers = set(raw["speaker_id"].astype(str))
    for output in ("data/prepared", "data/features", "eval", "metrics", "models/export"):
        for path in (tiny_repo / output).rglob("*"):
            assert not any(s in path.name for s in raw_speakers), path
            if path.suffix in (".csv", ".json"):
                text = path.read_text()
                assert not any(s in text for s in raw_speakers), path

    # Per-file predictions and the plots DVC renders.
    predictions = pd.read_csv(tiny_repo / "eval/predictions_test_clean.csv")
    assert sorted(predictions["file_id"]) == sorted(test_files["file_id"])
    assert set(predictions["speaker_id"]) <= set(manifest["speaker_id"])
    assert (predictions["predicted"] == (predictions["probability"] >= threshold["threshold"])).all()
    assert list(pd.read_csv(tiny_repo / "eval/plots/confusion_test_clean.csv").columns) == ["actual", "predicted"]
    assert (tiny_repo / "eval/figures/roc_test_clean.png").stat().st_size > 1000
    reliability = pd.read_csv(tiny_repo / "eval/plots/reliability_test_noisy.csv")
    assert reliability["count"].sum() == metrics["n_files"]
    assert (tiny_repo / "eval/figures/reliability_test_noisy.png").stat().st_size > 1000

    train_metrics = json.loads((tiny_repo / "metrics/train.json").read_text())
    assert train_metrics["parameters"] == 691_613
    assert train_metrics["epochs_run"] == 2
    assert {"val/loss", "val/file_loss", "val/file_accuracy", "val/file_auroc"} <= set(train_metrics)
    # best.ckpt is the epoch with the lowest per-file validation loss; last.ckpt the final epoch.
    checkpoints = {name: torch.load(tiny_repo / f"models/checkpoints/{name}.ckpt", weights_only=True)
                   for name in ("best", "last")}
    assert checkpoints["last"]["epoch"] == train_metrics["epochs_run"] - 1
    best_callback = next(state for key, state in checkpoints["last"]["callbacks"].items()
                         if key.startswith("ModelCheckpoint") and "'val/file_loss'" in key)
    assert float(best_callback["best_model_score"]) == pytest.approx(train_metrics["val/file_loss"], abs=1e-5)

    # Nothing changed: nothing re-runs, dvc.lock is untouched and DVC sees every stage up to date.
    lock = (tiny_repo / "dvc.lock").read_bytes()
    second = run(["dvc", "repro"], tiny_repo)
    assert _ran(second.stdout) == set()
    assert (tiny_repo / "dvc.lock").read_bytes() == lock
    assert json.loads(run(["dvc", "status", "--json"], tiny_repo).stdout) == {}

    # dvc exp show lists the test metrics.
    shown = json.loads(run(["dvc", "exp", "show", "--json"], tiny_repo).stdout)
    workspace = shown[0]["data"]
    assert workspace["metrics"]["metrics/test.json"]["data"]["test_clean"]["auroc"] == metrics["auroc"]


def test_model_param_change_reruns_only_train_and_evaluate(smoke_pipeline: PipelineRun, tmp_path: Path):
    # A copy of the shared run, committed; up to evaluate: the stages after it are not what this test is about.
    tiny_repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    experiment = run(["dvc", "exp", "run", "evaluate", "-S", "model.dropout=0.5"], tiny_repo)
    assert _ran(experiment.stdout) == {"train", "evaluate"}
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    assert params["model"]["dropout"] == 0.5
    # DVC recomposed params.yaml from conf/ with the override: everything else unchanged.
    assert params["trainer"]["max_epochs"] == 2
