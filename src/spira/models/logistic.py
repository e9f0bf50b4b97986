"""Logistic regression as a window classifier: one linear logit of the features (averaged over
the window's frames; eGeMAPS functionals have one frame), so it trains, scores and exports
through the same pipeline as the networks. Its weights are fitted by scikit-learn
(spira.training.logistic_fit), not by gradient descent; the pipeline's standardisation
(featurize's train mean and std) is its scaler."""

from __future__ import annotations

import torch
from torch import nn


class LogisticRegression(nn.Module):
    """(batch, frames, features) -> (batch,) logits: w . mean_over_frames(x) + b."""

    def __init__(self, num_features: int, num_frames: int):
        super().__init__()
        self.linear = nn.Linear(num_features, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features.mean(dim=1)).squeeze(-1)
