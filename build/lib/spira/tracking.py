"""Experiment loggers (CSV, DVCLive, W&B) and the run metadata they record.

W&B runs offline unless the user sets WANDB_MODE=online, and are written under
the user's repository even from the DVC queue, whose stages run in a temporary
copy of it (DVC_ROOT names the real one). Only configuration, metrics, plots
built from per-file predictions and run metadata are logged: no audio, no
file paths, no patient ids, no salt (`private_config`).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from spira.layout import PIPELINE

WANDB_LOGGER = "lightning.pytorch.loggers.WandbLogger"
DVCLIVE_LOGGER = "dvclive.lightning.DVCLiveLogger"
CLASS_NAMES = ["control", "patient"]


def use_offline_wandb_by_default() -> None:
    """Nothing leaves the machine unless the user opts in with WANDB_MODE=online."""
    os.environ.setdefault("WANDB_MODE", "offline")


def repository_root() -> Path:
    """The user's repository: DVC_ROOT inside `dvc exp run` and the DVC queue, else the working directory."""
    return Path(os.environ.get("DVC_ROOT", os.getcwd()))


def data_version(prepared_dir: str | Path, lock_path: str | Path = "dvc.lock") -> str | None:
    """The DVC hash (md5) of the prepared data, as recorded in dvc.lock by the prepare stage."""
    lock_path = Path(lock_path)
    if not lock_path.is_file():
        return None
    stages = (yaml.safe_load(lock_path.read_text()) or {}).get("stages", {})
    for out in stages.get("prepare", {}).get("outs", []):
        if (lock_path.parent / out["path"]).resolve() == Path(prepared_dir).resolve():
            return out.get("md5")
    return None


def git_commit(cwd: str | Path = ".") -> str | None:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def run_metadata(cfg: DictConfig) -> dict[str, Any]:
    """What identifies a run's inputs besides its config: data version and code version."""
    return {"data_version": data_version(PIPELINE.prepared), "git_commit": git_commit()}


# Key names whose values are secrets wherever they appear.
SECRET_KEY = re.compile(r"salt|secret|token|password|api_?key", re.IGNORECASE)


def fingerprint(value: Any) -> str:
    """Tells two runs' values apart without showing them."""
    return "private:" + hashlib.sha256(str(value).encode("utf-8")).hexdigest()[:12]


def private_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as loggers receive it: the keys of cfg.privacy.private_keys, any
    key named like a secret and any absolute path replaced by a fingerprint."""
    private_keys = set(OmegaConf.select(cfg, "privacy.private_keys", default=None) or [])

    def scrub(node: Any, key: str) -> Any:
        if isinstance(node, dict):
            return {name: scrub(value, f"{key}.{name}" if key else str(name)) for name, value in node.items()}
        if isinstance(node, list):
            return [scrub(value, key) for value in node]
        name = key.rsplit(".", 1)[-1]
        private = key in private_keys or SECRET_KEY.search(name) or (isinstance(node, str) and os.path.isabs(node))
        return fingerprint(node) if private and node is not None else node

    return scrub(OmegaConf.to_container(cfg, resolve=True), "")


def wandb_run_arguments(conf: DictConfig, cfg: DictConfig) -> dict[str, Any]:
    """save_dir under the repository root, group/name from the DVC experiment, resolved config.

    Experiments queued from one baseline commit form one sweep, so they share
    the group `dvc-<baseline>`; the run is named after the experiment.
    """
    import wandb

    save_dir = repository_root() / conf.save_dir
    save_dir.mkdir(parents=True, exist_ok=True)
    baseline = os.environ.get("DVC_EXP_BASELINE_REV")
    return {
        "save_dir": str(save_dir),
        # No system metadata: it records the command line, where `-S data.root=...`
        # or a salt override would name the hospital or give the salt away.
        "settings": wandb.Settings(x_disable_meta=True, disable_code=True),
        "group": conf.group or (f"dvc-{baseline[:7]}" if baseline else None),
        "name": conf.name or os.environ.get("DVC_EXP_NAME"),
        "config": {**private_config(cfg), **run_metadata(cfg)},
    }


def instantiate_loggers(cfg: DictConfig, wandb_run_id: str | None = None) -> list[Logger]:
    """One Lightning logger per entry of cfg.logger (none, one or many). A resumed training
    run passes its W&B run id: the W&B logger continues that run (WandbLogger resumes with
    resume="allow"); None starts a new one."""
    loggers = []
    for conf in cfg.logger.values():
        if conf._target_ == WANDB_LOGGER:
            use_offline_wandb_by_default()
            # Partial: `config` (the run's config, itself full of _target_ keys)
            # is neither a name instantiate accepts nor something to instantiate.
            run_id = {"id": wandb_run_id} if wandb_run_id else {}
            loggers.append(instantiate(conf, _partial_=True)(**wandb_run_arguments(conf, cfg), **run_id))
        else:
            loggers.append(instantiate(conf))
    return loggers


def uses_wandb(cfg: DictConfig) -> bool:
    return any(conf._target_ == WANDB_LOGGER for conf in cfg.logger.values())


def log_test_results(cfg: DictConfig, test_metrics: dict[str, dict], report_dir: str | Path) -> None:
    """Clean and noisy test metrics, ROC curves and confusion matrices as W&B charts.

    Into the active run when there is one (the Hydra entry trains and evaluates
    in one run), else into a run of its own, job type `evaluate`, with the same
    group and name as the train stage's run (the DVC evaluate stage). The charts
    are built from the per-file predictions evaluate wrote (labels and
    probabilities only).
    """
    import wandb

    run = wandb.run
    own_run = run is None
    if own_run:
        use_offline_wandb_by_default()
        conf = next(conf for conf in cfg.logger.values() if conf._target_ == WANDB_LOGGER)
        arguments = wandb_run_arguments(conf, cfg)
        run = wandb.init(
            project=conf.project,
            dir=arguments["save_dir"],
            group=arguments["group"],
            name=arguments["name"],
            job_type="evaluate",
            config=arguments["config"],
            settings=arguments["settings"],
        )
    charts = {}
    for test_set, metrics in test_metrics.items():
        predictions = pd.read_csv(Path(report_dir) / f"predictions_{test_set}.csv")
        actual = predictions["actual"].to_numpy()
        probability = predictions["probability"].to_numpy()
        charts[f"{test_set}/roc"] = wandb.plot.roc_curve(
            actual, [[1 - p, p] for p in probability], labels=CLASS_NAMES, classes_to_plot=[1], title=f"ROC ({test_set})"
        )
        charts[f"{test_set}/confusion"] = wandb.plot.confusion_matrix(
            y_true=actual.tolist(), preds=predictions["predicted"].tolist(), class_names=CLASS_NAMES, title=f"Confusion ({test_set})"
        )
        for name, value in metrics.items():
            run.summary[f"{test_set}/{name}"] = value
    # The metric table of eval/report.md: every metric that carries an interval, with it.
    intervals = [
        [test_set, name.removesuffix("_ci_low"), metrics[name.removesuffix("_ci_low")], metrics[name], metrics[name.replace("_ci_low", "_ci_high")]]
        for test_set, metrics in test_metrics.items()
        for name in metrics
        if name.endswith("_ci_low")
    ]
    charts["test/metrics_table"] = wandb.Table(columns=["test set", "metric", "value", "ci_low", "ci_high"], data=intervals)
    run.log(charts)
    if own_run:
        run.finish()
