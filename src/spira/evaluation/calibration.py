"""Calibration: Brier score, expected calibration error, reliability table and temperature scaling.

The probabilities are per-file (or per-speaker) means of window sigmoids.
Temperature scaling divides their logit by one scalar T fitted on the
validation predictions (cross-entropy); it changes how confident the model
says it is, never the order of the files, so AUROC is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

from spira.metrics import file_loss
from spira.probability import apply_temperature  # the exported model's decision applies the same function


def brier_score(labels: np.ndarray, prob: np.ndarray) -> float:
    return float(np.mean((np.asarray(prob, dtype=np.float64) - np.asarray(labels, dtype=np.float64)) ** 2))


def _bin_of(prob: np.ndarray, bins: int) -> np.ndarray:
    return np.minimum((prob * bins).astype(np.int64), bins - 1)


def reliability_table(labels: np.ndarray, prob: np.ndarray, bins: int) -> pd.DataFrame:
    """Per non-empty equal-width probability bin: mean predicted probability, observed patient fraction, count."""
    prob, labels = np.asarray(prob, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    bin_of = _bin_of(prob, bins)
    counts = np.bincount(bin_of, minlength=bins)
    filled = counts > 0
    predicted = np.bincount(bin_of, weights=prob, minlength=bins)[filled] / counts[filled]
    observed = np.bincount(bin_of, weights=labels, minlength=bins)[filled] / counts[filled]
    return pd.DataFrame({"predicted": predicted.round(6), "observed": observed.round(6), "count": counts[filled]})


def expected_calibration_error(labels: np.ndarray, prob: np.ndarray, bins: int) -> float:
    """Count-weighted mean |observed - predicted| over equal-width bins."""
    prob, labels = np.asarray(prob, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    bin_of = _bin_of(prob, bins)
    gap = np.bincount(bin_of, weights=labels - prob, minlength=bins)
    return float(np.abs(gap).sum() / prob.size)


def fit_temperature(labels: np.ndarray, prob: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the cross-entropy of the validation predictions."""
    result = minimize_scalar(
        lambda log_t: file_loss(labels, apply_temperature(prob, float(np.exp(log_t)))), bounds=(np.log(0.05), np.log(20.0)), method="bounded"
    )
    return float(np.exp(result.x))
