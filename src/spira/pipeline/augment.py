"""The augment settings from the config: the `augment` group (training) and `noisy_test` (the noisy evaluation sets)."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from spira.augment.pipeline import AugmentSettings, WardNoiseSettings


def ward_noise_settings(ward_noise: DictConfig) -> WardNoiseSettings:
    """augment.ward_noise, or noisy_test (the same keys; its `seed` is read by featurize)."""
    return WardNoiseSettings(
        num_noise_control=int(ward_noise.num_noise_control),
        num_noise_patient=int(ward_noise.num_noise_patient),
        min_amplitude=float(ward_noise.min_amplitude),
        max_amplitude=float(ward_noise.max_amplitude),
        probability=float(ward_noise.get("probability", 1.0)),
    )


def augment_settings(augment: DictConfig) -> AugmentSettings:
    """The augment option: its ward noise and its audiomentations pipeline, each when present."""
    compose = augment.get("audiomentations")
    return AugmentSettings(
        ward_noise=ward_noise_settings(augment.ward_noise) if augment.get("ward_noise") else None,
        audiomentations=OmegaConf.to_container(compose, resolve=True) if compose else None,
    )
