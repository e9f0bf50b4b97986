"""The summary table of a Hydra sweep: one row per run, its overrides and metrics, best first."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import pandas as pd
import yaml
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)

# Written by each run of `python -m spira.experiment` into its run folder.
RUN_METRICS_FILE = "metrics.json"
RUN_ERROR_FILE = "error.txt"
SUMMARY_CSV = "summary.csv"
SUMMARY_MARKDOWN = "summary.md"
# Shown after the objective metric, when a run has them.
REPORTED_METRICS = (
    "val/file_loss",
    "val/file_auroc",
    "val/file_accuracy",
    "test_clean/auroc",
    "test_clean/accuracy",
    "test_noisy/auroc",
    "test_noisy/accuracy",
)


def read_run(run_dir: Path, metric: str) -> tuple[dict[str, str], dict]:
    """(overrides, status and metrics) of one run folder."""
    overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    metrics_path = run_dir / RUN_METRICS_FILE
    if metrics_path.is_file():
        metrics = json.loads(metrics_path.read_text())
        result = {"status": "ok", **{name: metrics.get(name, math.nan) for name in (metric, *REPORTED_METRICS)}}
    else:
        result = {"status": "failed" if (run_dir / RUN_ERROR_FILE).is_file() else "incomplete", metric: math.nan}
    return dict(override.split("=", 1) for override in overrides if "=" in override), result


def summarize_sweep(sweep_dir: Path, metric: str, direction: str) -> pd.DataFrame:
    """All runs of a sweep folder, one column per overridden key, then status and
    metrics, sorted by `metric` (best first, failed runs last)."""
    run_dirs = sorted((path.parent.parent for path in sweep_dir.glob("*/.hydra/overrides.yaml")), key=lambda p: (len(p.name), p.name))
    rows, override_keys = [], {}
    for run_dir in run_dirs:
        overrides, result = read_run(run_dir, metric)
        override_keys.update(dict.fromkeys(overrides))
        rows.append({"job": run_dir.name, **overrides, **result})
    columns = ["job", *override_keys, "status", *dict.fromkeys((metric, *REPORTED_METRICS))]
    table = pd.DataFrame(rows, columns=columns)
    table = table.drop(columns=[name for name in REPORTED_METRICS if name != metric and table[name].isna().all()])
    return table.sort_values(metric, ascending=direction == "minimize", na_position="last", kind="stable").reset_index(drop=True)


def write_summary(sweep_dir: Path, metric: str, direction: str) -> pd.DataFrame:
    table = summarize_sweep(sweep_dir, metric, direction)
    table.to_csv(sweep_dir / SUMMARY_CSV, index=False)
    (sweep_dir / SUMMARY_MARKDOWN).write_text(table.to_markdown(index=False, floatfmt=".4f") + "\n")
    return table


class SweepSummary(Callback):
    """Hydra callback: at the end of a multirun, print and save the table of its runs."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = write_summary(sweep_dir, config.objective.metric, config.objective.direction)
        log.info(
            "Sweep summary (sorted by %s, %s), saved to %s:\n%s",
            config.objective.metric,
            config.objective.direction,
            sweep_dir / SUMMARY_CSV,
            (sweep_dir / SUMMARY_MARKDOWN).read_text(),
        )
        if not table.empty and (table["status"] != "ok").any():
            log.warning("%d of %d runs did not finish: see %s in their folders", int((table["status"] != "ok").sum()), len(table), RUN_ERROR_FILE)
