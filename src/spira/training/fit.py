"""Train: fit the configured model on the featurized windows with Lightning."""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from spira.augment.pipeline import AugmentSettings, build_augmenter, build_batch_noise, training_noise_clips
from spira.features.windows import window_spec
from spira.features.store import load_normalization
from spira.layout import Layout
from spira.training.checkpoint import load_module, read_checkpoint
from spira.training.data import FeatureDataModule, epoch_seed
from spira.training.logistic_fit import LogisticFitSettings
from spira.training.module import SpiraLitModule
from spira.training.pretrained import load_pann_weights
from spira.training.resume import ResumePoint, ResumeRecord

log = logging.getLogger(__name__)

# The entry of cfg.callbacks whose checkpoint the pipeline evaluates.
BEST_CHECKPOINT = "model_checkpoint"
# The entry of cfg.callbacks that rewrites its checkpoint after every epoch: the one a killed run resumes from.
LAST_CHECKPOINT = "last_checkpoint"


class TrainingInterrupted(SystemExit):
    """Ctrl-C (SIGINT) stopped training; the last finished epoch's checkpoint is kept to resume from.

    A SystemExit, as Lightning's own graceful shutdown raises: uncaught, the process
    prints the message and exits with status 1 (DVC records nothing, a sweep stops)."""


@dataclass(frozen=True)
class FitSettings:
    """What a fit reads (built by spira.pipeline.training_run.fit_settings). The dicts are
    resolved config groups: `model`, `callbacks`' entries and `trainer` are `_target_` dicts."""

    model: Mapping[str, Any]
    features: Mapping[str, Any]
    optimizer: Mapping[str, Any]
    warmup_steps: int
    augment: AugmentSettings
    batch_size: int
    num_workers: int
    validation_sets: tuple[str, ...]
    seed: int
    callbacks: Mapping[str, Mapping[str, Any]]
    trainer: Mapping[str, Any]
    allowed_targets: tuple[str, ...]
    # model.pretrained_checkpoint, taken out of `model` (the network never sees it): PANN weights to start from.
    pretrained_checkpoint: str | None = None
    # model.fit, taken out of `model` likewise: fit a logistic regression with scikit-learn, not Lightning.
    logistic_fit: LogisticFitSettings | None = None


def checkpoint_path(callbacks: Mapping[str, Mapping[str, Any]], folder: Path, callback: str = BEST_CHECKPOINT) -> Path:
    """The file a ModelCheckpoint entry of `callbacks` writes in `folder`: folder/filename.ckpt.
    The one place checkpoint files are named: the callbacks config decides."""
    return Path(folder) / f"{callbacks[callback]['filename']}.ckpt"


def build_module(settings: FitSettings, features_dir: Path) -> SpiraLitModule:
    """The LightningModule for settings.model, fed the window shape of settings.features and
    the normalisation measured by featurize in `features_dir`, its network initialised from
    settings.pretrained_checkpoint when one is set (spira.training.pretrained)."""
    net = dict(settings.model)
    net["num_frames"] = window_spec(settings.features).frames
    normalization = load_normalization(Path(features_dir)) or {}
    module = SpiraLitModule(
        net=net,
        features=dict(settings.features),
        optimizer=dict(settings.optimizer),
        warmup_steps=settings.warmup_steps,
        feature_mean=normalization.get("mean"),
        feature_std=normalization.get("std"),
    )
    if settings.pretrained_checkpoint is not None:
        loaded = load_pann_weights(module.net, settings.pretrained_checkpoint)
        log.info("network initialised from %s (sha256 %s): %d tensors, the head trained from scratch", loaded["file"], loaded["sha256"][:12], loaded["tensors"])
    return module


class EpochLines(L.Callback):
    """One line per epoch on stderr (epoch, train loss, validation metrics, seconds):
    progress that stays readable where the output is not a terminal."""

    def __init__(self) -> None:
        # None until an epoch starts in this process: a resumed run does not print the epoch it resumed after again.
        self.started: float | None = None

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self.started is None:
            return
        metrics = " ".join(f"{name} {float(value):.4f}" for name, value in sorted(trainer.callback_metrics.items()))
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {metrics} ({time.perf_counter() - self.started:.1f} s)", file=sys.stderr, flush=True)


class EpochSeeds(L.Callback):
    """Seeds torch (CPU and every GPU), numpy and random at the start of every training epoch
    from (seed, epoch, rank): the dropout and noise of an epoch depend on nothing before it,
    so a run resumed after epoch N trains epoch N+1 exactly as an uninterrupted run does
    (Lightning restores no RNG state). The shuffle and the workers' seeds are drawn before
    this hook in a fit's first epoch: they have their own (data.EpochShuffle)."""

    def __init__(self, seed: int):
        self.seed = int(seed)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        seed = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)


def checkpoint_callbacks(callbacks: Mapping[str, Mapping[str, Any]], folder: Path) -> dict[str, L.Callback]:
    """The callbacks instantiated, every ModelCheckpoint writing into `folder`."""
    return {
        name: instantiate(conf, dirpath=str(folder)) if issubclass(get_class(conf["_target_"]), ModelCheckpoint) else instantiate(conf)
        for name, conf in callbacks.items()
    }


def fit(settings: FitSettings, layout: Layout, module: SpiraLitModule, start: ResumePoint, fingerprint: dict[str, str], loggers: list) -> dict:
    """Fit `module` (from build_module, made after the run's seed_everything), keep the best (lowest
    val/file_loss) and last checkpoints, return a summary: epochs, parameter count and the
    validation metrics of the best checkpoint.

    It reads the prepared data and features of `layout` and writes checkpoints to layout.resume,
    resuming from `start` (the run machinery of spira.pipeline.training_run decides it, and
    publishes the checkpoints when training ends). Ctrl-C raises TrainingInterrupted.

    Under DDP every rank fits; only global rank zero validates the best
    checkpoint and returns the summary (the other ranks return an empty dict).
    """
    spec = window_spec(settings.features)
    prepared_dir = layout.prepared
    augmenter = build_augmenter(settings.augment, prepared_dir, spec.sample_rate)
    module.batch_noise = build_batch_noise(settings.augment, training_noise_clips(settings.augment, prepared_dir), spec.window_samples)
    datamodule = FeatureDataModule(
        layout.features,
        settings.batch_size,
        settings.num_workers,
        augmenter,
        prepared_dir,
        spec,
        audio_windows=module.batch_noise is not None,
        validation_sets=list(settings.validation_sets),
        seed=settings.seed,
    )
    # Every ModelCheckpoint writes into the resume folder while training.
    callbacks = checkpoint_callbacks(settings.callbacks, layout.resume)
    # Lightning's progress bar on a terminal; in logs (DVC, CI) one line per epoch.
    wanted_progress = bool(settings.trainer.get("enable_progress_bar", True))
    progress_bar = wanted_progress and sys.stderr.isatty()
    epoch_lines = [EpochLines()] if wanted_progress and not progress_bar else []
    run_callbacks = [*callbacks.values(), *epoch_lines, EpochSeeds(settings.seed), ResumeRecord(fingerprint, start.stopped)]
    trainer = instantiate(settings.trainer, callbacks=run_callbacks, logger=loggers or False, enable_progress_bar=progress_bar)
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=start.checkpoint, weights_only=True)
    except SystemExit:
        # Lightning's graceful Ctrl-C: it stops, tears down and exits; last.ckpt keeps the last finished epoch.
        if trainer.interrupted:
            raise TrainingInterrupted(f"training interrupted (Ctrl-C); the next run resumes from the last finished epoch in {layout.resume}") from None
        raise
    if not trainer.is_global_zero:
        return {}

    checkpoint = callbacks[BEST_CHECKPOINT]
    allowed_targets = list(settings.allowed_targets)
    best = load_module(checkpoint.best_model_path, allowed_targets)
    validation = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False)
    best_metrics = validation.validate(best, datamodule=datamodule, verbose=False)[0]
    summary = {
        "best_epoch": int(read_checkpoint(checkpoint.best_model_path, allowed_targets)["epoch"]),
        "epochs_run": int(trainer.current_epoch),
        "parameters": int(sum(p.numel() for p in module.net.parameters())),
        **{key: round(float(value), 6) for key, value in sorted(best_metrics.items())},
    }
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            model_size = {"model/parameters": summary["parameters"], "model/checkpoint_bytes": Path(checkpoint.best_model_path).stat().st_size}
            logger.experiment.summary.update(model_size)
    return summary

