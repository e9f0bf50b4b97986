"""Per-file aggregation and binary classification metrics.

One implementation serves validation (inside the LightningModule) and the
evaluate stage, so validation and test are measured the same way: per file.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import f1_score, roc_auc_score

METRIC_NAMES = ("accuracy", "balanced_accuracy", "f1", "auroc", "sensitivity", "specificity", "ppv", "npv", "n_files")


def aggregate_per_file(file_index: np.ndarray, window_prob: np.ndarray, window_label: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean window probability per file.

    Returns (file indices in ascending order, mean probability, file label).
    Raises if a file's windows carry different labels.
    """
    files, inverse, counts = np.unique(file_index, return_inverse=True, return_counts=True)
    prob = np.bincount(inverse, weights=window_prob.astype(np.float64)) / counts
    label_sum = np.bincount(inverse, weights=window_label.astype(np.float64))
    if not np.all((label_sum == 0) | (label_sum == counts)):
        raise ValueError("windows of one file carry different labels")
    return files, prob, (label_sum > 0).astype(np.int64)


def file_loss(labels: np.ndarray, file_prob: np.ndarray, eps: float = 1e-7) -> float:
    """Binary cross-entropy of the per-file mean probabilities: the loss of the
    decision the pipeline actually makes (one per file), used for model selection."""
    labels = np.asarray(labels, dtype=np.float64)
    prob = np.clip(np.asarray(file_prob, dtype=np.float64), eps, 1 - eps)
    return float(-np.mean(labels * np.log(prob) + (1 - labels) * np.log(1 - prob)))


def binary_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Accuracy, balanced accuracy, F1, AUROC, sensitivity, specificity, PPV, NPV and count.

    Class 1 (patient) is positive. A metric that is undefined for the data
    (AUROC with one class, sensitivity without patients, PPV without a
    positive decision) is NaN.
    """
    labels = np.asarray(labels).astype(np.int64)
    predicted = (np.asarray(scores) >= threshold).astype(np.int64)
    positives, negatives = labels == 1, labels == 0
    sensitivity = float(predicted[positives].mean()) if positives.any() else math.nan
    specificity = float(1 - predicted[negatives].mean()) if negatives.any() else math.nan
    both_classes = positives.any() and negatives.any()
    called_positive, called_negative = predicted == 1, predicted == 0
    return {
        "accuracy": float((predicted == labels).mean()),
        "balanced_accuracy": (sensitivity + specificity) / 2 if both_classes else math.nan,
        "f1": float(f1_score(labels, predicted, zero_division=0)),
        "auroc": float(roc_auc_score(labels, scores)) if both_classes else math.nan,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "ppv": float(labels[called_positive].mean()) if called_positive.any() else math.nan,
        "npv": float(1 - labels[called_negative].mean()) if called_negative.any() else math.nan,
        "n_files": int(labels.size),
    }
