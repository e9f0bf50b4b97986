"""The featurize step: MFCC windows of the prepared data."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from spira.features.featurize import FeaturizeSettings, featurize
from spira.layout import PIPELINE, Layout
from spira.pipeline.augment import ward_noise_settings


def featurize_settings(cfg: DictConfig) -> FeaturizeSettings:
    return FeaturizeSettings(
        features=OmegaConf.to_container(cfg.features, resolve=True),
        noisy_test=ward_noise_settings(cfg.noisy_test),
        noise_seed=int(cfg.noisy_test.seed),
        num_workers=int(cfg.features.num_workers),
        normalize=bool(cfg.features.normalize),
    )


def featurize_data(cfg: DictConfig, layout: Layout = PIPELINE) -> dict[str, int]:
    """MFCC windows of every split and of the noisy test set; returns the window count of each."""
    # The recordings and the ward noise: folders the features may not overlap (spira.safety).
    inputs = {"data.root": cfg.data.root, "data.noise_root": cfg.data.noise_root}
    return featurize(featurize_settings(cfg), layout.prepared, layout.features, inputs)
