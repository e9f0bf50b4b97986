"""The model steps: fit, pick the checkpoint, evaluate, write the results.

The DVC stages `train` and `evaluate` call `fit_model` and `evaluate_model`;
the Hydra entry (`python -m spira.experiment`) calls `train_and_evaluate`, the
same two steps, for each run of a sweep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from spira.data.manifest import read_prepared_manifest
from spira.data.quarantine import QUARANTINE_SUMMARY_FILE
from spira.evaluation.evaluate import EvaluationSettings, evaluate
from spira.evaluation.report import participant_counts, render_report
from spira.evaluation.subgroups import subgroup_table
from spira.layout import PIPELINE, Layout
from spira.reproducibility import machine_record
from spira.safety import write_text_atomic
from spira.tracking import log_test_results, uses_wandb
from spira.training.checkpoint import load_module
from spira.pipeline.training_run import fit_run
from spira.training.fit import checkpoint_path


@dataclass(frozen=True)
class RunOutputs:
    """Where one run writes its results, and the folders it reads and trains in (`layout`)."""

    train_metrics: Path
    test_metrics: Path
    report_dir: Path
    subgroup_metrics: Path
    # The machine that trained: `spira verify` compares exactly on it, within a tolerance elsewhere.
    machine_record: Path
    layout: Layout = PIPELINE

    @property
    def threshold_record(self) -> Path:
        """The decision threshold, its rule and the validation numbers that chose it."""
        return self.report_dir / "threshold.json"

    @property
    def report(self) -> Path:
        return self.report_dir / "report.md"


# The DVC pipeline's outputs, as dvc.yaml declares them.
STAGE_OUTPUTS = RunOutputs(
    train_metrics=Path("metrics/train.json"),
    test_metrics=Path("metrics/test.json"),
    report_dir=Path("eval"),
    subgroup_metrics=Path("metrics/subgroups.json"),
    machine_record=Path("reports/machine.json"),
)


def run_outputs(run_dir: Path, repo_root: Path) -> RunOutputs:
    """The outputs of one Hydra run, inside its run folder; it reads the repository's data and features."""
    return RunOutputs(
        train_metrics=run_dir / "train_metrics.json",
        test_metrics=run_dir / "test_metrics.json",
        report_dir=run_dir / "eval",
        subgroup_metrics=run_dir / "subgroup_metrics.json",
        machine_record=run_dir / "machine.json",
        layout=PIPELINE.for_run(run_dir, repo_root),
    )


def read_json(path: Path) -> dict | None:
    """A JSON file an earlier stage wrote, or None when it did not (a step run on its own)."""
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, content: dict) -> None:
    """Complete or not at all: a killed run never leaves half a metrics file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(content, indent=2) + "\n")


def fit_model(cfg: DictConfig, outputs: RunOutputs = STAGE_OUTPUTS) -> dict:
    """Fit cfg.model, keep the best and last checkpoints, write the training summary.

    Returns the summary (empty on DDP ranks other than zero, which write nothing)."""
    summary = fit_run(cfg, outputs.layout)
    if summary:
        write_json(outputs.train_metrics, summary)
        write_json(outputs.machine_record, machine_record(str(cfg.trainer.accelerator)))
    return summary


def evaluation_settings(cfg: DictConfig) -> EvaluationSettings:
    conf = cfg.evaluate
    return EvaluationSettings(
        threshold=conf.threshold,
        batch_size=int(conf.batch_size),
        threshold_sets=tuple(conf.threshold_sets),
        aggregate=str(conf.aggregate),
        calibration=str(conf.calibration),
        calibration_bins=int(conf.calibration_bins),
        resamples=int(conf.bootstrap.resamples),
        confidence=float(conf.bootstrap.confidence),
        seed=int(conf.bootstrap.seed),
        subgroup_min_files=int(conf.subgroups.min_files),
    )


def evaluate_model(cfg: DictConfig, outputs: RunOutputs = STAGE_OUTPUTS) -> dict[str, dict]:
    """Choose the threshold on the validation predictions of the best checkpoint, score the clean
    and noisy test sets with it, write metrics (with the threshold record), predictions and plots,
    and log them to W&B when a W&B logger is configured."""
    layout = outputs.layout
    module = load_module(checkpoint_path(cfg.callbacks, layout.checkpoints), list(cfg.checkpoint.allowed_targets))
    settings = evaluation_settings(cfg)
    manifest = read_prepared_manifest(layout.prepared)
    groups = subgroup_table(manifest, list(cfg.evaluate.subgroups.age_bands))
    test_metrics, decision, per_subgroup = evaluate(module, layout.features, settings, outputs.report_dir, groups)
    write_json(outputs.subgroup_metrics, per_subgroup)
    write_json(outputs.threshold_record, decision)
    figures = sorted(path.name for path in (outputs.report_dir / "figures").glob("*.png"))
    quarantine, audit = read_json(layout.quarantine / QUARANTINE_SUMMARY_FILE), read_json(layout.audit)
    write_text_atomic(outputs.report, render_report(participant_counts(manifest), quarantine, decision, test_metrics, per_subgroup, audit, figures,
                                                 noisy_patients_unchanged=int(cfg.noisy_test.num_noise_patient) == 0))
    write_json(outputs.test_metrics, {"threshold": decision, **test_metrics})
    if uses_wandb(cfg):
        log_test_results(cfg, {name: metrics for name, metrics in test_metrics.items() if "status" not in metrics}, outputs.report_dir)
    return {"threshold": decision, **test_metrics}


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
