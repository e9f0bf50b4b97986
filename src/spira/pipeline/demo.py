"""The demo step: the seeded synthetic cohort of the generate_demo stage."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from spira.demo import DemoCohortConfig, generate_demo_cohort


def generate_demo(cfg: DictConfig) -> dict:
    """Write the seeded synthetic cohort to demo_cohort.out_dir; returns its counts."""
    options = OmegaConf.to_container(cfg.demo_cohort, resolve=True)
    out_dir = Path(options.pop("out_dir"))
    return generate_demo_cohort(out_dir, DemoCohortConfig(**options))
