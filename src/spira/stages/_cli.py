"""Shared command line of the stage scripts: which params file to read."""

from __future__ import annotations

import argparse
import logging

from omegaconf import DictConfig

from spira.config import load_params


def stage_params(description: str) -> DictConfig:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--params", default="params.yaml", help="composed parameters (default: params.yaml)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return load_params(args.params)
