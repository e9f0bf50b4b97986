"""Train: fit the configured model on the featurized windows with Lightning."""

from __future__ import annotations

import logging
import random
import shutil
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from spira.augment.pipeline import build_augmenter, build_batch_noise, training_noise_clips
from spira.features.windows import window_spec
from spira.features.store import load_normalization
from spira.layout import Layout
from spira.safety import check_output_path, replace_folder, staged_folder
from spira.tracking import instantiate_loggers
from spira.training.checkpoint import load_module, read_checkpoint
from spira.training.data import FeatureDataModule, epoch_seed
from spira.training.module import SpiraLitModule
from spira.training.resume import ResumePoint, ResumeRecord, resume_point, run_fingerprint

log = logging.getLogger(__name__)

# The entry of cfg.callbacks whose checkpoint the pipeline evaluates.
BEST_CHECKPOINT = "model_checkpoint"
# The entry of cfg.callbacks that rewrites its checkpoint after every epoch: the one a killed run resumes from.
LAST_CHECKPOINT = "last_checkpoint"


class TrainingInterrupted(SystemExit):
    """Ctrl-C (SIGINT) stopped training; the last finished epoch's checkpoint is kept to resume from.

    A SystemExit, as Lightning's own graceful shutdown raises: uncaught, the process
    prints the message and exits with status 1 (DVC records nothing, a sweep stops)."""


def checkpoint_path(callbacks: DictConfig, folder: Path, callback: str = BEST_CHECKPOINT) -> Path:
    """The file a ModelCheckpoint entry of `callbacks` writes in `folder`: folder/filename.ckpt.
    The one place checkpoint files are named: the callbacks config decides."""
    return Path(folder) / f"{callbacks[callback].filename}.ckpt"


def build_module(cfg: DictConfig, features_dir: Path) -> SpiraLitModule:
    """The LightningModule for cfg.model, fed the window shape of cfg.features and the
    normalisation measured by featurize in `features_dir`."""
    net = OmegaConf.to_container(cfg.model, resolve=True)
    net["num_frames"] = window_spec(cfg.features).frames
    normalization = load_normalization(Path(features_dir)) or {}
    return SpiraLitModule(
        net=net,
        features=OmegaConf.to_container(cfg.features, resolve=True),
        optimizer=OmegaConf.to_container(cfg.train.optimizer, resolve=True),
        warmup_steps=int(cfg.train.warmup_steps),
        feature_mean=normalization.get("mean"),
        feature_std=normalization.get("std"),
    )


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


def guarded_folders(cfg: DictConfig, layout: Layout) -> dict[str, Path]:
    """The folders the run reads or publishes to: none may overlap the resume folder."""
    inputs = {key: Path(OmegaConf.select(cfg, key)) for key in ("data.root", "data.noise_root") if OmegaConf.select(cfg, key) is not None}
    return {**inputs, "the prepared data": layout.prepared, "the features": layout.features, "the checkpoints": layout.checkpoints}


def find_resume_point(cfg: DictConfig, layout: Layout, fingerprint: dict[str, str]) -> ResumePoint:
    """The last checkpoint of an interrupted run of the same fingerprint, or a fresh start (with an
    empty resume folder, so that ModelCheckpoint finds no stale best.ckpt to version as best-v1.ckpt)."""
    check_output_path(layout.resume, "the resume folder", guarded_folders(cfg, layout))
    last = checkpoint_path(cfg.callbacks, layout.resume, LAST_CHECKPOINT) if LAST_CHECKPOINT in cfg.callbacks else None
    point = resume_point(last, fingerprint, list(cfg.checkpoint.allowed_targets)) if last else ResumePoint(None, f"callbacks.{LAST_CHECKPOINT} is not configured")
    if point.checkpoint is None:
        start_fresh(cfg, layout, point.reason)
    elif rank_zero_only.rank == 0:
        log.info("resuming the interrupted run after epoch %d from %s", point.epochs_done, point.checkpoint)
    return point


@rank_zero_only
def start_fresh(cfg: DictConfig, layout: Layout, reason: str) -> None:
    """Rank zero only: under DDP the other ranks start later, while rank zero already trains."""
    log.info("starting fresh: %s", reason)
    replace_folder(layout.resume, "the resume folder", guarded_folders(cfg, layout))


def publish_checkpoints(cfg: DictConfig, layout: Layout) -> None:
    """The finished run's checkpoints into layout.checkpoints (built aside, swapped in
    whole), then the resume folder removed: the next run starts fresh."""
    folders = guarded_folders(cfg, layout)
    published = folders.pop("the checkpoints")
    with staged_folder(published, "the checkpoints", {**folders, "the resume folder": layout.resume}) as staging:
        for checkpoint in sorted(layout.resume.glob("*.ckpt")):
            shutil.copy2(checkpoint, staging / checkpoint.name)
    shutil.rmtree(layout.resume)


def checkpoint_callbacks(callbacks: DictConfig, folder: Path) -> dict[str, L.Callback]:
    """cfg.callbacks instantiated, every ModelCheckpoint writing into `folder`."""
    return {
        name: instantiate(conf, dirpath=str(folder)) if issubclass(get_class(conf._target_), ModelCheckpoint) else instantiate(conf)
        for name, conf in callbacks.items()
    }


def fit(cfg: DictConfig, layout: Layout) -> dict:
    """Fit, keep the best (lowest val/file_loss) and last checkpoints, return a summary:
    epochs, parameter count and the validation metrics of the best checkpoint.

    It reads the prepared data and features of `layout`. Checkpoints are written to
    layout.resume while training, and the run resumes from the last one there when it
    belongs to the same params, data and code (spira.training.resume); when training
    ends they are published to layout.checkpoints. Ctrl-C raises TrainingInterrupted.

    Under DDP every rank fits; only global rank zero validates the best
    checkpoint and returns the summary (the other ranks return an empty dict).
    """
    L.seed_everything(int(cfg.seed), workers=True)
    module = build_module(cfg, layout.features)
    fingerprint = run_fingerprint(cfg, [layout.prepared, layout.features])
    start = find_resume_point(cfg, layout, fingerprint)
    spec = window_spec(cfg.features)
    prepared_dir = layout.prepared
    augmenter = build_augmenter(cfg.augment, prepared_dir, spec.sample_rate)
    module.batch_noise = build_batch_noise(cfg.augment, training_noise_clips(cfg.augment, prepared_dir), spec.window_samples)
    datamodule = FeatureDataModule(
        layout.features,
        int(cfg.train.batch_size),
        int(cfg.train.num_workers),
        augmenter,
        prepared_dir,
        spec,
        audio_windows=module.batch_noise is not None,
        validation_sets=list(cfg.train.validation_sets),
        seed=int(cfg.seed),
    )
    # Every ModelCheckpoint writes into the resume folder while training.
    callbacks = checkpoint_callbacks(cfg.callbacks, layout.resume)
    loggers = instantiate_loggers(cfg, wandb_run_id=start.wandb_run_id)
    # Lightning's progress bar on a terminal; in logs (DVC, CI) one line per epoch.
    progress_bar = bool(cfg.trainer.enable_progress_bar) and sys.stderr.isatty()
    epoch_lines = [EpochLines()] if cfg.trainer.enable_progress_bar and not progress_bar else []
    run_callbacks = [*callbacks.values(), *epoch_lines, EpochSeeds(int(cfg.seed)), ResumeRecord(fingerprint, start.stopped)]
    trainer = instantiate(cfg.trainer, callbacks=run_callbacks, logger=loggers or False, enable_progress_bar=progress_bar)
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
    allowed_targets = list(cfg.checkpoint.allowed_targets)
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
    publish_checkpoints(cfg, layout)
    return summary

