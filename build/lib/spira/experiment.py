"""Hydra entry point: train and evaluate one run per configuration, each in its own run folder.

    python -m spira.experiment                                            # outputs/<date>/<time>/
    python -m spira.experiment -m model.dropout=0.5,0.7 augment=none,spira_noise   # multirun/<date>/<time>/<job>/
    python -m spira.experiment hparams_search=optuna                      # Optuna on validation AUROC

It composes the same conf/ as DVC and needs the data of `dvc repro featurize`
(or `make repro`). Each run folder holds checkpoints/, metrics.json (training
summary plus clean and noisy test metrics, flattened), config.yaml (the
resolved config), eval/ (predictions and plots) and the loggers' output. A run
that fails inside a sweep is logged (error.txt) and the sweep goes on.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_original_cwd, to_absolute_path
from omegaconf import DictConfig, OmegaConf, open_dict

from spira.config import hydra_config_path
from spira.features.store import FEATURES_FILE
from spira.layout import PIPELINE
from spira.pipeline.model import run_outputs, train_and_evaluate
from spira.sweeps import RUN_ERROR_FILE, RUN_METRICS_FILE
from spira.tracking import DVCLIVE_LOGGER, WANDB_LOGGER, use_offline_wandb_by_default, uses_wandb

log = logging.getLogger(__name__)


def run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """cfg resolved, with the loggers' and the trainer's folders routed into run_dir (the
    checkpoints go there too: `run_outputs`)."""
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        cfg.trainer.default_root_dir = str(run_dir)
        for conf in cfg.logger.values():
            for key in ("save_dir", "dir"):
                if key in conf:
                    conf[key] = str(run_dir / conf[key])
            if conf._target_ == DVCLIVE_LOGGER:
                # A dvc.yaml inside a run folder would join the DVC pipeline's plots.
                conf.dvcyaml = False
    OmegaConf.resolve(cfg)
    return cfg


def require_features(features_dir: str | Path) -> None:
    missing = [split for split in ("train", "val", "test") if not (Path(features_dir) / FEATURES_FILE.format(split=split)).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{features_dir}: no featurized {', '.join(missing)} data. "
            "Run `dvc repro featurize` (or `make repro`) in the repository first."
        )


def run(cfg: DictConfig, run_dir: Path) -> dict:
    """One run of the sweep: its config, then fit and evaluate into run_dir.

    Returns the run's flattened metrics (empty on DDP ranks other than zero)."""
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    # A run killed in a fixed run folder (hydra.run.dir=...) resumes there.
    metrics = train_and_evaluate(cfg, run_outputs(run_dir, Path(get_original_cwd())))
    if metrics:
        (run_dir / RUN_METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def objective(metrics: dict, metric: str) -> float:
    if metric not in metrics:
        raise KeyError(f"objective.metric {metric!r} is not among the run's metrics: {sorted(metrics)}")
    return float(metrics[metric])


@hydra.main(config_path=hydra_config_path(), config_name="config", version_base=None)
def main(cfg: DictConfig) -> float | None:
    use_offline_wandb_by_default()
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    if multirun:
        # Runs of one sweep share a W&B group, named after the sweep folder.
        sweep = Path(hydra_cfg.sweep.dir)
        for conf in cfg.logger.values():
            if conf._target_ == WANDB_LOGGER:
                conf.group = conf.group or f"{sweep.parent.name}_{sweep.name}"
                conf.name = conf.name or f"{sweep.name}-{hydra_cfg.job.num}"
    cfg = run_config(cfg, run_dir)
    require_features(to_absolute_path(str(PIPELINE.features)))
    try:
        metrics = run(cfg, run_dir)
    except Exception:
        if not multirun:
            raise
        log.exception("run %s failed; the sweep goes on", run_dir)
        (run_dir / RUN_ERROR_FILE).write_text(traceback.format_exc())
        return math.nan
    finally:
        if uses_wandb(cfg):
            import wandb

            wandb.finish()
    if not metrics:
        return None
    value = objective(metrics, cfg.objective.metric)
    log.info("%s = %s (run folder %s)", cfg.objective.metric, value, run_dir)
    return value


if __name__ == "__main__":
    main()
