"""Shared command line of the stage scripts: which params file to read."""

from __future__ import annotations

import argparse
import logging

from omegaconf import DictConfig

from spira.config import declared_params, load_params, restrict_params
from spira.layout import check_params


def stage_params(description: str, stage: str) -> DictConfig:
    """The params of `stage`: only the keys dvc.yaml declares for it, so reading any
    other key fails here rather than leaving DVC blind to it. Recordings configured
    inside a folder the pipeline writes are refused (UnsafeParamsError), before anything runs."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="composed parameters (default: params.yaml)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(args.params)
    check_params(params)  # an UnsafeParamsError: the stage's exit_on_user_error prints its line
    return restrict_params(params, declared_params(stage))
