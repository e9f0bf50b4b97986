"""Evaluate: per-file test metrics, predictions, ROC and confusion data and figures."""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_curve
from tqdm import tqdm

from spira.features.store import NOISY_TEST, load_split
from spira.metrics import aggregate_per_file, binary_metrics
from spira.safety import atomic_file


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


def evaluate_split(module: torch.nn.Module, features_dir: Path, split: str, threshold: float, batch_size: int) -> tuple[dict, pd.DataFrame]:
    """Per-file metrics and the per-file predictions table for one featurized split."""
    windows, index = load_split(features_dir, split)
    window_prob = predict_windows(module, windows, batch_size, f"evaluate {split}")
    file_numbers, file_ids = pd.factorize(index["file_id"])
    numbers, prob, label = aggregate_per_file(file_numbers, window_prob, index["label"].to_numpy())
    speakers = index.groupby("file_id", sort=False)["speaker_id"].first()
    predictions = pd.DataFrame(
        {
            "file_id": file_ids[numbers],
            "speaker_id": speakers.loc[file_ids[numbers]].to_numpy(),
            "actual": label,
            "probability": prob.round(6),
            "predicted": (prob >= threshold).astype(int),
            "windows": np.bincount(file_numbers)[numbers],
        }
    )
    metrics = binary_metrics(label, prob, threshold)
    return {name: (round(value, 6) if isinstance(value, float) else value) for name, value in metrics.items()}, predictions


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_file(path) as temporary:
        frame.to_csv(temporary, index=False)


def write_png(figure, path: Path) -> None:
    with atomic_file(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100, metadata={"Software": None})


def write_report(name: str, metrics: dict, predictions: pd.DataFrame, out_dir: Path) -> None:
    """ROC points and actual/predicted pairs for `dvc plots`, plus PNG figures, each file
    written whole or not at all (spira.safety.atomic_file)."""
    plots_dir, figures_dir = out_dir / "plots", out_dir / "figures"
    plots_dir.mkdir(parents=True, exist_ok=True)
    figures_dir.mkdir(parents=True, exist_ok=True)
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


# Report name -> featurized split: the clean test set and SPIRA's noisy one.
TEST_SETS = {"test_clean": "test", "test_noisy": NOISY_TEST}


def evaluate(module: torch.nn.Module, features_dir: str | Path, threshold: float, batch_size: int, out_dir: str | Path) -> dict:
    """Evaluate a window classifier on the clean and noisy test sets: {"test_clean": {...}, "test_noisy": {...}}."""
    results = {}
    for name, split in TEST_SETS.items():
        metrics, predictions = evaluate_split(module, Path(features_dir), split, threshold, batch_size)
        write_report(name, metrics, predictions, Path(out_dir))
        results[name] = metrics
    return results
