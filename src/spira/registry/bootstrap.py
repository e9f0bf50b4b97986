"""Paired, speaker-level bootstrap of the AUROC difference between two models.

Both models score the same files; a resample draws speakers with replacement
(a speaker's files stay together, as the split keeps them together) and
weights every file by how often its speaker was drawn, so the two AUROCs of one
resample are computed on the same people and their difference is paired.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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


def pairwise_wins(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """patients x controls: 1 where the patient scores higher, 0.5 on ties, 0 otherwise."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    return (positive[:, None] > negative[None, :]) + 0.5 * (positive[:, None] == negative[None, :])


def weighted_auroc(wins: np.ndarray, positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
    """AUROC of each row of weights (resamples x files of each class): the Mann-Whitney statistic."""
    numerator = ((positive_weights @ wins) * negative_weights).sum(axis=1)
    denominator = positive_weights.sum(axis=1) * negative_weights.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def paired_auroc_difference(
    labels: np.ndarray, challenger: np.ndarray, champion: np.ndarray, speakers: np.ndarray,
    resamples: int = 2000, confidence: float = 0.95, seed: int = 0,
) -> PairedDifference:  # fmt: skip
    """Percentile interval of AUROC(challenger) - AUROC(champion) over speaker resamples.

    labels, challenger, champion, speakers: one entry per file (0/1 label, the
    two models' file probabilities, the file's speaker)."""
    labels = np.asarray(labels).astype(int)
    if len(set(labels.tolist())) < 2:
        raise ValueError("the paired bootstrap needs patients and controls in the test set")
    speaker_numbers = np.unique(np.asarray(speakers), return_inverse=True)[1]
    n_speakers = int(speaker_numbers.max()) + 1
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_speakers, size=(resamples, n_speakers))
    # counts[b, s]: how often speaker s was drawn in resample b; a file weighs its speaker's count.
    counts = np.zeros((resamples, n_speakers))
    np.add.at(counts, (np.repeat(np.arange(resamples), n_speakers), drawn.ravel()), 1)
    file_weights = counts[:, speaker_numbers]
    wins = [pairwise_wins(np.asarray(scores, dtype=float), labels) for scores in (challenger, champion)]

    def difference(positive_weights: np.ndarray, negative_weights: np.ndarray) -> np.ndarray:
        return weighted_auroc(wins[0], positive_weights, negative_weights) - weighted_auroc(wins[1], positive_weights, negative_weights)

    observed = difference(np.ones((1, int((labels == 1).sum()))), np.ones((1, int((labels == 0).sum()))))[0]
    resampled = difference(file_weights[:, labels == 1], file_weights[:, labels == 0])
    resampled = resampled[~np.isnan(resampled)]
    if resampled.size == 0:
        raise ValueError("no speaker resample held both classes: the test set is too small for a bootstrap")
    alpha = (1 - confidence) / 2
    low, high = np.quantile(resampled, [alpha, 1 - alpha])
    return PairedDifference(
        difference=float(observed), ci_low=float(low), ci_high=float(high), confidence=float(confidence),
        resamples=int(resamples), resamples_used=int(resampled.size), speakers=n_speakers,
    )  # fmt: skip
