"""Speaker-level bootstrap confidence intervals for the binary metrics.

The files of one speaker are not independent, so the bootstrap resamples
speakers with replacement and takes all their files along (a cluster
bootstrap). A resample is a vector of speaker multiplicities; every metric is
a function of multiplicity-weighted sums of per-speaker counts, so all
resamples are computed at once with a few matrix products, AUROC included
(the Mann-Whitney statistic over pairs of speakers). Intervals are percentile
intervals; a resample where a metric is undefined (no patient drawn, say) is
left out of that metric's interval.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# The metrics that get an interval, as binary_metrics names them.
INTERVAL_METRICS = ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


def _per_speaker(labels: np.ndarray, scores: np.ndarray, speakers: np.ndarray, threshold: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-speaker confusion counts and the speaker x speaker AUROC pair counts."""
    codes, _ = pd.factorize(pd.Series(speakers))
    n_speakers = int(codes.max()) + 1 if codes.size else 0
    predicted = scores >= threshold

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=mask.astype(np.float64), minlength=n_speakers)

    counts = {
        "tp": count((labels == 1) & predicted),
        "fn": count((labels == 1) & ~predicted),
        "fp": count((labels == 0) & predicted),
        "tn": count((labels == 0) & ~predicted),
    }
    # pairs[a, b]: over patient files of speaker a and control files of speaker b,
    # the number of pairs the score orders correctly (ties count half).
    positive, negative = labels == 1, labels == 0
    order = (scores[positive][:, None] > scores[negative][None, :]) + 0.5 * (scores[positive][:, None] == scores[negative][None, :])
    pairs = np.zeros((n_speakers, n_speakers))
    np.add.at(pairs, (codes[positive][:, None], codes[negative][None, :]), order)
    counts["pairs"] = pairs
    return codes, counts


def _metrics_from_counts(weights: np.ndarray, counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every interval metric for each row of speaker multiplicities (NaN where undefined)."""
    tp, fn, fp, tn = (weights @ counts[key] for key in ("tp", "fn", "fp", "tn"))
    correct_pairs = ((weights @ counts["pairs"]) * weights).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = tp / (tp + fn)
        specificity = tn / (tn + fp)
        precision_recall = 2 * tp + fp + fn
        return {
            "auroc": correct_pairs / ((tp + fn) * (tn + fp)),
            "accuracy": (tp + tn) / (tp + tn + fp + fn),
            "balanced_accuracy": (sensitivity + specificity) / 2,
            "sensitivity": sensitivity,
            "specificity": specificity,
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            # Undefined without a patient in the resample; 0 when patients are there but none is found.
            "f1": np.where(tp + fn > 0, 2 * tp / np.where(precision_recall > 0, precision_recall, 1), np.nan),
        }


def speaker_bootstrap(
    labels: np.ndarray,
    scores: np.ndarray,
    speakers: np.ndarray,
    threshold: float,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """{metric: (low, high)} percentile intervals from `resamples` speaker resamples.

    (NaN, NaN) for a metric undefined in every resample."""
    labels = np.asarray(labels).astype(np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    _, counts = _per_speaker(labels, scores, np.asarray(speakers), threshold)
    n_speakers = counts["tp"].size
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_speakers, size=(resamples, n_speakers))
    weights = np.zeros((resamples, n_speakers))
    np.add.at(weights, (np.arange(resamples)[:, None], drawn), 1.0)
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for name, values in _metrics_from_counts(weights, counts).items():
        values = values[np.isfinite(values)]
        intervals[name] = (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))) if values.size else (float("nan"),) * 2
    return intervals

