"""Train: fit the configured model on the featurized windows with Lightning."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from spira.augment.pipeline import build_augmenter, build_batch_noise, training_noise_clips
from spira.features.windows import window_spec
from spira.features.store import load_normalization
from spira.safety import replace_folder
from spira.tracking import instantiate_loggers
from spira.training.checkpoint import load_module, read_checkpoint
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
        # Without out_dir: every logger receives these hyperparameters, and a path is private.
        features={key: value for key, value in OmegaConf.to_container(cfg.features, resolve=True).items() if key != "out_dir"},
        optimizer=OmegaConf.to_container(cfg.train.optimizer, resolve=True),
        warmup_steps=int(cfg.train.warmup_steps),
        feature_mean=normalization.get("mean"),
        feature_std=normalization.get("std"),
    )


class EpochLines(L.Callback):
    """One line per epoch on stderr (epoch, train loss, validation metrics, seconds):
    progress that stays readable where the output is not a terminal."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    @rank_zero_only
    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        metrics = " ".join(f"{name} {float(value):.4f}" for name, value in sorted(trainer.callback_metrics.items()))
        print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}: {metrics} ({time.perf_counter() - self.started:.1f} s)", file=sys.stderr, flush=True)


@rank_zero_only
def remove_stale_checkpoints(cfg: DictConfig) -> None:
    """ModelCheckpoint would version a stale best.ckpt as best-v1.ckpt. Rank zero
    only: under DDP the other ranks start later, while rank zero already trains.
    The folder may not overlap the data the run reads (spira.safety)."""
    inputs = {key: OmegaConf.select(cfg, key) for key in ("data.root", "data.noise_root", "data.out_dir", "features.out_dir")}
    replace_folder(checkpoint_path(cfg).parent, "callbacks.model_checkpoint.dirpath", inputs)


def fit(cfg: DictConfig) -> dict:
    """Fit, keep the best (lowest val/file_loss) and last checkpoints, return a summary:
    epochs, parameter count and the validation metrics of the best checkpoint.

    Under DDP every rank fits; only global rank zero validates the best
    checkpoint and returns the summary (the other ranks return an empty dict).
    """
    L.seed_everything(int(cfg.seed), workers=True)
    remove_stale_checkpoints(cfg)
    module = build_module(cfg)
    spec = window_spec(cfg.features)
    prepared_dir = Path(cfg.data.out_dir)
    augmenter = build_augmenter(cfg.augment, prepared_dir, spec.sample_rate)
    module.batch_noise = build_batch_noise(cfg.augment, training_noise_clips(cfg.augment, prepared_dir), spec.window_samples)
    datamodule = FeatureDataModule(
        cfg.features.out_dir,
        int(cfg.train.batch_size),
        int(cfg.train.num_workers),
        augmenter,
        prepared_dir,
        spec,
        audio_windows=module.batch_noise is not None,
        validation_sets=list(cfg.train.validation_sets),
    )
    callbacks = {name: instantiate(conf) for name, conf in cfg.callbacks.items()}
    loggers = instantiate_loggers(cfg)
    # Lightning's progress bar on a terminal; in logs (DVC, CI) one line per epoch.
    progress_bar = bool(cfg.trainer.enable_progress_bar) and sys.stderr.isatty()
    epoch_lines = [EpochLines()] if cfg.trainer.enable_progress_bar and not progress_bar else []
    trainer = instantiate(cfg.trainer, callbacks=[*callbacks.values(), *epoch_lines], logger=loggers or False, enable_progress_bar=progress_bar)
    trainer.fit(module, datamodule=datamodule)
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
    return summary

