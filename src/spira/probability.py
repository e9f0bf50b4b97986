"""Temperature scaling of file probabilities: numpy only, shared by evaluation (which fits the
temperature on validation) and the exported model's decision (`spira predict`, `spira serve`)."""

from __future__ import annotations

import numpy as np

# Probabilities are clipped to [EPS, 1 - EPS] before their logit is taken.
EPS = 1e-7


def apply_temperature(prob: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(logit(prob) / temperature): a new confidence for every probability, the same order."""
    prob = np.clip(np.asarray(prob, dtype=np.float64), EPS, 1 - EPS)
    return 1 / (1 + np.exp(-np.log(prob / (1 - prob)) / temperature))
