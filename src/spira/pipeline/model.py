"""The model steps: fit, pick the checkpoint, evaluate, write the results.

The DVC stages `train` and `evaluate` call `fit_model` and `evaluate_model`;
the Hydra entry (`python -m spira.train`) calls `train_and_evaluate`, the
same two steps, for each run of a sweep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from spira.evaluation.evaluate import evaluate
from spira.safety import write_text_atomic
from spira.tracking import log_test_results, uses_wandb
from spira.training.checkpoint import load_module
from spira.training.train import checkpoint_path, fit


@dataclass(frozen=True)
class RunOutputs:
    """Where one run writes its results."""

    train_metrics: Path
    test_metrics: Path
    report_dir: Path


# The DVC pipeline's outputs, as dvc.yaml declares them.
STAGE_OUTPUTS = RunOutputs(train_metrics=Path("metrics/train.json"), test_metrics=Path("metrics/test.json"), report_dir=Path("eval"))


def run_outputs(run_dir: Path) -> RunOutputs:
    """The outputs of one Hydra run, inside its run folder."""
    return RunOutputs(train_metrics=run_dir / "train_metrics.json", test_metrics=run_dir / "test_metrics.json", report_dir=run_dir / "eval")


def write_json(path: Path, content: dict) -> None:
    """Complete or not at all: a killed run never leaves half a metrics file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def fit_model(cfg: DictConfig, outputs: RunOutputs = STAGE_OUTPUTS) -> dict:
    """Fit cfg.model, keep the best and last checkpoints, write the training summary.

    Returns the summary (empty on DDP ranks other than zero, which write nothing)."""
    summary = fit(cfg)
    if summary:
        write_json(outputs.train_metrics, summary)
    return summary


def evaluate_model(cfg: DictConfig, outputs: RunOutputs = STAGE_OUTPUTS) -> dict[str, dict]:
    """Score the best checkpoint on the clean and noisy test sets, write metrics, predictions
    and plots, and log them to W&B when a W&B logger is configured."""
    module = load_module(checkpoint_path(cfg), list(cfg.checkpoint.allowed_targets))
    test_metrics = evaluate(module, Path(cfg.features.out_dir), float(cfg.evaluate.threshold), int(cfg.evaluate.batch_size), outputs.report_dir)
    write_json(outputs.test_metrics, test_metrics)
    if uses_wandb(cfg):
        log_test_results(cfg, test_metrics, outputs.report_dir)
    return test_metrics


def flatten_metrics(train_summary: dict, test_metrics: dict[str, dict]) -> dict:
    """One flat dict: the training summary plus `test_set/metric` keys."""
    return {**train_summary, **{f"{test_set}/{name}": value for test_set, values in test_metrics.items() for name, value in values.items()}}


def train_and_evaluate(cfg: DictConfig, outputs: RunOutputs = STAGE_OUTPUTS) -> dict:
    """Fit, then evaluate the best checkpoint: the whole of one run.

    Returns the flattened metrics (empty on DDP ranks other than zero)."""
    summary = fit_model(cfg, outputs)
    if not summary:
        return {}
    return flatten_metrics(summary, evaluate_model(cfg, outputs))
