"""Evaluate: the threshold chosen on validation, then test metrics with speaker-level
intervals, calibration, predictions, ROC, confusion and reliability data and figures."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_curve
from tqdm import tqdm

from spira.features.store import NOISY_TEST, has_split, load_split
from spira.evaluation.bootstrap import INTERVAL_METRICS, speaker_bootstrap
from spira.evaluation.calibration import apply_temperature, brier_score, expected_calibration_error, fit_temperature, reliability_table
from spira.evaluation.subgroups import subgroup_metrics
from spira.evaluation.thresholds import EvaluationError, choose_threshold, parse_rule
from spira.metrics import aggregate_per_file, binary_metrics
from spira.safety import atomic_file, staged_folder


def predict_windows(module: torch.nn.Module, windows: np.ndarray, batch_size: int, name: str = "predict") -> np.ndarray:
    """Sigmoid probability per window, in eval mode, batch by batch, with a progress bar on stderr.

    `module` maps a (batch, frames, coefficients) feature tensor to window logits."""
    module.eval()
    probs = []
    with torch.inference_mode():
        for start in tqdm(range(0, windows.shape[0], batch_size), desc=name, unit="batch", file=sys.stderr, mininterval=1.0):
            batch = torch.from_numpy(np.array(windows[start : start + batch_size], dtype=np.float32))
            probs.append(torch.sigmoid(module(batch)).double().numpy())
    return np.concatenate(probs) if probs else np.empty(0)


@dataclass(frozen=True)
class EvaluationSettings:
    """The `evaluate` config group as plain values."""

    threshold: str | float  # a number or a rule of evaluation.thresholds
    batch_size: int
    threshold_sets: tuple[str, ...] = ("val",)  # the validation sets the rule is applied to (those featurized)
    aggregate: str = "file"  # the unit a decision is made for: one recording (see AGGREGATES)
    calibration: str = "none"  # none | temperature (fitted on validation)
    calibration_bins: int = 10
    resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0
    subgroup_min_files: int = 10  # smaller subgroups: counts only

    def __post_init__(self):
        parse_rule(self.threshold)  # a bad rule fails before any prediction is made
        if self.aggregate == "speaker":
            raise EvaluationError(
                "evaluate.aggregate=speaker: export, the gate, `spira predict` and `spira serve` decide one recording at a time, "
                "so a threshold chosen on speaker means would be applied to file probabilities; use evaluate.aggregate=file "
                "(every interval is already a speaker bootstrap)"
            )
        if self.aggregate not in AGGREGATES:
            raise EvaluationError(f"evaluate.aggregate={self.aggregate}: expected one of {list(AGGREGATES)}")
        if self.calibration not in CALIBRATIONS:
            raise EvaluationError(f"evaluate.calibration={self.calibration}: expected one of {list(CALIBRATIONS)}")


log = logging.getLogger(__name__)

# One decision per recording: what the exported model, `spira predict` and `spira serve` make.
AGGREGATES = ("file",)
CALIBRATIONS = ("none", "temperature")
# Metrics that depend on the threshold: also reported at the conventional 0.5.
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


def predict_files(module: torch.nn.Module, features_dir: Path, split: str, batch_size: int) -> pd.DataFrame:
    """Per-file mean window probability of one featurized split: file_id, speaker_id, actual, probability, windows."""
    windows, index = load_split(features_dir, split)
    window_prob = predict_windows(module, windows, batch_size, f"evaluate {split}")
    file_numbers, file_ids = pd.factorize(index["file_id"])
    numbers, prob, label = aggregate_per_file(file_numbers, window_prob, index["label"].to_numpy())
    speakers = index.groupby("file_id", sort=False)["speaker_id"].first()
    return pd.DataFrame(
        {
            "file_id": file_ids[numbers],
            "speaker_id": speakers.loc[file_ids[numbers]].to_numpy(),
            "actual": label,
            "probability": prob,
            "windows": np.bincount(file_numbers)[numbers],
        }
    )


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as temporary:
        frame.to_csv(temporary, index=False)


def write_png(figure, path: Path) -> None:
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, metadata={"Software": None})


def score_split(module: torch.nn.Module, features_dir: Path, split: str, batch_size: int, temperature: float | None = None) -> pd.DataFrame:
    """The files of one featurized split with their probabilities: the one scoring path of evaluate
    and the gate (mean window probability per file, then the temperature when calibrated, as
    `spira predict` applies it from the exported contract)."""
    files = predict_files(module, features_dir, split, batch_size)
    if temperature is not None:
        files = files.assign(probability=apply_temperature(files["probability"].to_numpy(), temperature))
    return files


def point_metrics(units: pd.DataFrame, threshold: float) -> dict:
    """The binary metrics of some decision units at `threshold`, rounded as the metrics files hold them."""
    metrics = binary_metrics(units["actual"].to_numpy(), units["probability"].to_numpy(), threshold)
    return {name: (round(value, 6) if isinstance(value, float) else value) for name, value in metrics.items()}


def set_metrics(units: pd.DataFrame, threshold: float, settings: EvaluationSettings) -> dict:
    """Metrics at the chosen threshold with speaker-level intervals, calibration, and the 0.5 metrics."""
    labels, prob, speakers = units["actual"].to_numpy(), units["probability"].to_numpy(), units["speaker_id"].to_numpy()
    point = point_metrics(units, threshold)
    intervals = speaker_bootstrap(labels, prob, speakers, threshold, settings.resamples, settings.confidence, settings.seed)
    metrics: dict = {"threshold": threshold}
    for name, value in point.items():
        metrics[name] = value
        if name in intervals:
            metrics[f"{name}_ci_low"], metrics[f"{name}_ci_high"] = intervals[name]
    metrics["n_files"] = int(units["files"].sum()) if "files" in units else int(len(units))
    metrics["n_speakers"] = int(pd.Series(speakers).nunique())
    metrics["brier"] = brier_score(labels, prob)
    metrics["ece"] = expected_calibration_error(labels, prob, settings.calibration_bins)
    at_half = binary_metrics(labels, prob, 0.5)
    metrics |= {f"{name}_at_0.5": at_half[name] for name in THRESHOLD_METRICS}
    return {name: (round(value, 6) if isinstance(value, float) else value) for name, value in metrics.items()}


def write_report(name: str, metrics: dict, predictions: pd.DataFrame, out_dir: Path, calibration_bins: int, plots_dir: Path, figures_dir: Path) -> None:
    """The predictions (into `out_dir`); ROC points, actual/predicted pairs and the reliability
    table for `dvc plots` (into `plots_dir`), plus PNG figures (into `figures_dir`), each file
    written whole or not at all (spira.safety.atomic_file; savefig writes the temporary)."""
    write_csv(predictions, out_dir / f"predictions_{name}.csv")
    write_csv(predictions[["actual", "predicted"]], plots_dir / f"confusion_{name}.csv")

    both_classes = predictions["actual"].nunique() == 2
    fpr, tpr, thresholds = roc_curve(predictions["actual"], predictions["probability"]) if both_classes else ([], [], [])
    roc = pd.DataFrame({"fpr": np.round(fpr, 6), "tpr": np.round(tpr, 6), "threshold": np.round(np.minimum(thresholds, 1.0), 6)})
    write_csv(roc, plots_dir / f"roc_{name}.csv")

    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot(roc["fpr"], roc["tpr"], label=f"AUROC {metrics['auroc']:.3f}")
    axis.plot([0, 1], [0, 1], "--", color="grey")
    axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC ({name})")
    axis.legend(loc="lower right")
    figure.tight_layout()
    write_png(figure, figures_dir / f"roc_{name}.png")
    plt.close(figure)

    matrix = np.zeros((2, 2), dtype=int)
    np.add.at(matrix, (predictions["actual"].to_numpy(), predictions["predicted"].to_numpy()), 1)
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.imshow(matrix, cmap="Blues")
    for (actual, predicted), count in np.ndenumerate(matrix):
        axis.text(predicted, actual, str(count), ha="center", va="center")
    axis.set(xticks=[0, 1], yticks=[0, 1], xticklabels=["control", "patient"], yticklabels=["control", "patient"])
    axis.set(xlabel="predicted", ylabel="actual", title=f"Confusion ({name})")
    figure.tight_layout()
    write_png(figure, figures_dir / f"confusion_{name}.png")
    plt.close(figure)

    reliability = reliability_table(predictions["actual"], predictions["probability"], calibration_bins)
    write_csv(reliability, plots_dir / f"reliability_{name}.csv")
    figure, axis = plt.subplots(figsize=(4, 4))
    axis.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    axis.plot(reliability["predicted"], reliability["observed"], "o-", label=f"ECE {metrics['ece']:.3f}, Brier {metrics['brier']:.3f}")
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability", ylabel="observed patient fraction", title=f"Reliability ({name})")
    axis.legend(loc="upper left")
    figure.tight_layout()
    write_png(figure, figures_dir / f"reliability_{name}.png")
    plt.close(figure)


# Report name -> featurized split: the clean test set and SPIRA's noisy one.
TEST_SETS = {"test_clean": "test", "test_noisy": NOISY_TEST}
# What metrics/test.json says about a test set featurize could not build.
NO_NOISE = "not evaluated: the cohort has no test noise recordings (data.noise_root)"


def evaluate(
    module: torch.nn.Module, features_dir: str | Path, settings: EvaluationSettings, out_dir: str | Path, subgroups: pd.DataFrame | None = None
) -> tuple[dict, dict, dict]:
    """Choose the threshold on the validation sets, then evaluate the clean and noisy test sets.

    `subgroups`: each decision unit's subgroups (evaluation.subgroups.subgroup_table).
    Returns ({"test_clean": {...}, "test_noisy": {...}}, the decision record:
    threshold, its rule and the validation numbers behind it, calibration;
    the metrics per subgroup of each test set).
    A noisy set featurize did not write (no noise recordings) is reported as
    not evaluated, with an empty predictions table."""
    features_dir, out_dir = Path(features_dir), Path(out_dir)
    sets = [split for split in settings.threshold_sets if has_split(features_dir, split)]
    validation = pd.concat([score_split(module, features_dir, split, settings.batch_size) for split in sets], ignore_index=True)
    temperature = None
    if settings.calibration == "temperature":
        temperature = fit_temperature(validation["actual"].to_numpy(), validation["probability"].to_numpy())
        validation = validation.assign(probability=apply_temperature(validation["probability"].to_numpy(), temperature))
    choice = choose_threshold(settings.threshold, validation["actual"].to_numpy(), validation["probability"].to_numpy())
    decision = choice.record() | {
        "validation_sets": sets,
        "aggregate": settings.aggregate,
        "calibration": settings.calibration,
        "temperature": None if temperature is None else round(temperature, 6),
    }
    results, per_subgroup = {}, {}
    out_dir.mkdir(parents=True, exist_ok=True)
    # eval/plots and eval/figures are built whole beside their names and swapped in: a killed
    # run leaves the previous folders, never a mix of two runs' files.
    with (
        staged_folder(out_dir / "plots", "evaluate's plots folder", {}) as plots_dir,
        staged_folder(out_dir / "figures", "evaluate's figures folder", {}) as figures_dir,
    ):
        for name, split in TEST_SETS.items():
            if not has_split(features_dir, split):
                log.warning("%s %s", name, NO_NOISE)
                write_csv(pd.DataFrame(columns=["speaker_id", "actual", "probability", "predicted"]), out_dir / f"predictions_{name}.csv")
                results[name] = {"n_files": 0, "status": NO_NOISE}
                continue
            units = score_split(module, features_dir, split, settings.batch_size, temperature)
            metrics = set_metrics(units, choice.threshold, settings)
            predictions = units.assign(probability=units["probability"].round(6), predicted=(units["probability"] >= choice.threshold).astype(int))
            write_report(name, metrics, predictions, out_dir, settings.calibration_bins, plots_dir, figures_dir)
            results[name] = metrics
            if subgroups is not None:
                per_subgroup[name] = subgroup_metrics(units, subgroups, settings.subgroup_min_files, partial(interval_metrics, threshold=choice.threshold, settings=settings))
    return results, decision, per_subgroup


def interval_metrics(units: pd.DataFrame, threshold: float, settings: EvaluationSettings) -> dict:
    """The metrics that carry intervals, with their intervals, of some decision units."""
    metrics = set_metrics(units, threshold, settings)
    return {name: value for name, value in metrics.items() if name.split("_ci_")[0] in INTERVAL_METRICS}
