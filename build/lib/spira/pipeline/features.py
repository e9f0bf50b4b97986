"""The featurize step: MFCC windows of the prepared data."""

from __future__ import annotations

from omegaconf import DictConfig

from spira.features.featurize import featurize
from spira.layout import PIPELINE, Layout


def featurize_data(cfg: DictConfig, layout: Layout = PIPELINE) -> dict[str, int]:
    """MFCC windows of every split and of the noisy test set; returns the window count of each."""
    # The recordings and the ward noise: folders the features may not overlap (spira.safety).
    inputs = {"data.root": cfg.data.root, "data.noise_root": cfg.data.noise_root}
    return featurize(cfg.features, layout.prepared, layout.features, cfg.noisy_test, inputs)
