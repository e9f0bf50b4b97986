"""The demo step: the seeded synthetic cohort of the generate_demo stage."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.layout import PIPELINE, Layout


def generate_demo(cfg: DictConfig, layout: Layout = PIPELINE) -> dict:
    """Write the seeded synthetic cohort to layout.demo; returns its counts."""
    return generate_demo_cohort(layout.demo, DemoCohortConfig(**OmegaConf.to_container(cfg.demo_cohort, resolve=True)))
