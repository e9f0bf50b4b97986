"""Speaker-level bootstrap: confidence intervals for the binary metrics, and the
paired interval of the AUROC difference between two models the gate judges.

The files of one speaker are not independent, so the bootstrap resamples
speakers with replacement and takes all their files along (a cluster
bootstrap). A resample is a vector of speaker multiplicities; every metric is
a function of multiplicity-weighted sums of per-speaker counts, so all
resamples are computed at once with a few matrix products, AUROC included
(the Mann-Whitney statistic over pairs of speakers). Intervals are percentile
intervals; a resample where a metric is undefined (no patient drawn, say) is
left out of that metric's interval. The paired difference draws the same
resamples for both models, so the two AUROCs of one resample are computed on the
same people.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from spira.evaluation.thresholds import EvaluationError

# The metrics that get an interval, as binary_metrics names them.
INTERVAL_METRICS = ("auroc", "accuracy", "balanced_accuracy", "sensitivity", "specificity", "ppv", "npv", "f1")


def speaker_codes(speakers: np.ndarray) -> tuple[np.ndarray, int]:
    """Each file's speaker as 0..n-1, numbered in order of first appearance, and n."""
    codes, _ = pd.factorize(pd.Series(np.asarray(speakers)))
    return codes, int(codes.max()) + 1 if codes.size else 0


def resample_weights(n_speakers: int, resamples: int, seed: int) -> np.ndarray:
    """resamples x speakers: how often each speaker is drawn when `n_speakers` are drawn with replacement."""
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_speakers, size=(resamples, n_speakers))
    weights = np.zeros((resamples, n_speakers))
    np.add.at(weights, (np.arange(resamples)[:, None], drawn), 1.0)
    return weights


def _pair_counts(labels: np.ndarray, scores: np.ndarray, codes: np.ndarray, n_speakers: int) -> np.ndarray:
    """pairs[a, b]: over patient files of speaker a and control files of speaker b,
    the number of pairs the score orders correctly (ties count half)."""
    positive, negative = labels == 1, labels == 0
    order = (scores[positive][:, None] > scores[negative][None, :]) + 0.5 * (scores[positive][:, None] == scores[negative][None, :])
    pairs = np.zeros((n_speakers, n_speakers))
    np.add.at(pairs, (codes[positive][:, None], codes[negative][None, :]), order)
    return pairs


def _weighted_auroc(weights: np.ndarray, pairs: np.ndarray, patients: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """The Mann-Whitney AUROC of each row of speaker multiplicities (NaN without both classes)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((weights @ pairs) * weights).sum(axis=1) / ((weights @ patients) * (weights @ controls))


def _per_speaker(labels: np.ndarray, scores: np.ndarray, speakers: np.ndarray, threshold: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-speaker confusion counts and the speaker x speaker AUROC pair counts."""
    codes, n_speakers = speaker_codes(speakers)
    predicted = scores >= threshold

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(codes, weights=mask.astype(np.float64), minlength=n_speakers)

    counts = {
        "tp": count((labels == 1) & predicted),
        "fn": count((labels == 1) & ~predicted),
        "fp": count((labels == 0) & predicted),
        "tn": count((labels == 0) & ~predicted),
    }
    counts["pairs"] = _pair_counts(labels, scores, codes, n_speakers)
    return codes, counts


def _metrics_from_counts(weights: np.ndarray, counts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every interval metric for each row of speaker multiplicities (NaN where undefined)."""
    tp, fn, fp, tn = (weights @ counts[key] for key in ("tp", "fn", "fp", "tn"))
    auroc = _weighted_auroc(weights, counts["pairs"], counts["tp"] + counts["fn"], counts["tn"] + counts["fp"])
    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = tp / (tp + fn)
        specificity = tn / (tn + fp)
        precision_recall = 2 * tp + fp + fn
        return {
            "auroc": auroc,
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
    weights = resample_weights(counts["tp"].size, resamples, seed)
    tail = (1 - confidence) / 2 * 100
    intervals = {}
    for name, values in _metrics_from_counts(weights, counts).items():
        values = values[np.isfinite(values)]
        intervals[name] = (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))) if values.size else (float("nan"),) * 2
    return intervals



@dataclass(frozen=True)
class PairedDifference:
    difference: float  # AUROC(challenger) - AUROC(champion) on the test set itself
    ci_low: float
    ci_high: float
    confidence: float
    resamples: int  # drawn
    resamples_used: int  # with both classes (the others have no AUROC)
    speakers: int

    def as_dict(self) -> dict:
        return {name: (round(value, 6) if isinstance(value, float) else value) for name, value in asdict(self).items()}


def paired_auroc_difference(
    labels: np.ndarray, challenger: np.ndarray, champion: np.ndarray, speakers: np.ndarray,
    resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
) -> PairedDifference:  # fmt: skip
    """Percentile interval of AUROC(challenger) - AUROC(champion) over speaker resamples.

    labels, challenger, champion, speakers: one entry per file (0/1 label, the
    two models' file probabilities, the file's speaker)."""
    labels = np.asarray(labels).astype(np.int64)
    if len(set(labels.tolist())) < 2:
        raise EvaluationError("the paired bootstrap needs patients and controls in the test set")
    codes, n_speakers = speaker_codes(speakers)
    patients = np.bincount(codes, weights=(labels == 1).astype(np.float64), minlength=n_speakers)
    controls = np.bincount(codes, weights=(labels == 0).astype(np.float64), minlength=n_speakers)
    pairs = [_pair_counts(labels, np.asarray(scores, dtype=np.float64), codes, n_speakers) for scores in (challenger, champion)]

    def difference(weights: np.ndarray) -> np.ndarray:
        return _weighted_auroc(weights, pairs[0], patients, controls) - _weighted_auroc(weights, pairs[1], patients, controls)

    observed = difference(np.ones((1, n_speakers)))[0]
    resampled = difference(resample_weights(n_speakers, resamples, seed))
    resampled = resampled[~np.isnan(resampled)]
    if resampled.size == 0:
        raise EvaluationError("no speaker resample held both classes: the test set is too small for a bootstrap")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return PairedDifference(
        difference=float(observed), ci_low=float(low), ci_high=float(high), confidence=float(confidence),
        resamples=int(resamples), resamples_used=int(resampled.size), speakers=n_speakers,
    )  # fmt: skip
