"""Train: fit the configured model on the featurized windows with Lightning."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from spira.augment.pipeline import build_augmenter
from spira.features.mfcc import window_spec
from spira.features.store import load_normalization
from spira.tracking import instantiate_loggers
from spira.training.data import FeatureDataModule
from spira.training.module import SpiraLitModule

# The entry of cfg.callbacks whose checkpoint the pipeline evaluates.
BEST_CHECKPOINT = "model_checkpoint"


def checkpoint_path(cfg: DictConfig, callback: str = BEST_CHECKPOINT) -> Path:
    """The file a ModelCheckpoint entry of cfg.callbacks writes: dirpath/filename.ckpt.
    The one place checkpoint files are named: the callbacks config decides."""
    conf = cfg.callbacks[callback]
    return Path(conf.dirpath) / f"{conf.filename}.ckpt"


def build_module(cfg: DictConfig) -> SpiraLitModule:
    """The LightningModule for cfg.model, fed the window shape and normalisation of cfg.features."""
    net = OmegaConf.to_container(cfg.model, resolve=True)
    net["num_frames"] = window_spec(cfg.features).frames
    normalization = load_normalization(Path(cfg.features.out_dir)) or {}
    return SpiraLitModule(
        net=net,
        features=OmegaConf.to_container(cfg.features, resolve=True),
        optimizer=OmegaConf.to_container(cfg.train.optimizer, resolve=True),
        warmup_steps=int(cfg.train.warmup_steps),
        feature_mean=normalization.get("mean"),
        feature_std=normalization.get("std"),
    )


@rank_zero_only
def remove_stale_checkpoints(checkpoint_dir: Path) -> None:
    """ModelCheckpoint would version a stale best.ckpt as best-v1.ckpt. Rank zero
    only: under DDP the other ranks start later, while rank zero already trains."""
    if checkpoint_dir.exists():
        shutil.rmtree(checkpoint_dir)


def fit(cfg: DictConfig) -> dict:
    """Fit, keep the best (lowest val/file_loss) and last checkpoints, return a summary:
    epochs, parameter count and the validation metrics of the best checkpoint.

    Under DDP every rank fits; only global rank zero validates the best
    checkpoint and returns the summary (the other ranks return an empty dict).
    """
    L.seed_everything(int(cfg.seed), workers=True)
    remove_stale_checkpoints(checkpoint_path(cfg).parent)
    module = build_module(cfg)
    spec = window_spec(cfg.features)
    augmenter = build_augmenter(cfg.augment, Path(cfg.data.out_dir), spec.sample_rate)
    datamodule = FeatureDataModule(
        cfg.features.out_dir, int(cfg.train.batch_size), int(cfg.train.num_workers), augmenter, cfg.data.out_dir, spec,
        validation_sets=list(cfg.train.validation_sets),
    )
    callbacks = {name: instantiate(conf) for name, conf in cfg.callbacks.items()}
    loggers = instantiate_loggers(cfg)
    trainer = instantiate(cfg.trainer, callbacks=list(callbacks.values()), logger=loggers or False)
    trainer.fit(module, datamodule=datamodule)
    if not trainer.is_global_zero:
        return {}

    checkpoint = callbacks[BEST_CHECKPOINT]
    best = SpiraLitModule.load_from_checkpoint(checkpoint.best_model_path, map_location="cpu")
    validation = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    best_metrics = validation.validate(best, datamodule=datamodule, verbose=False)[0]
    summary = {
        "best_epoch": int(torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)["epoch"]),
        "epochs_run": int(trainer.current_epoch),
        "parameters": int(sum(p.numel() for p in module.net.parameters())),
        **{key: round(float(value), 6) for key, value in sorted(best_metrics.items())},
    }
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            model_size = {"model/parameters": summary["parameters"], "model/checkpoint_bytes": Path(checkpoint.best_model_path).stat().st_size}
            logger.experiment.summary.update(model_size)
    return summary

