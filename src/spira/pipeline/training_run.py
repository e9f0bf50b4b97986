"""The run machinery around a fit: the resume folder, resuming an interrupted run, the loggers,
and publishing the finished run's checkpoints. spira.training.fit is the fit itself."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from spira.layout import Layout
from spira.pipeline.augment import augment_settings
from spira.safety import check_output_path, replace_folder, staged_folder
from spira.tracking import instantiate_loggers
from spira.training.fit import LAST_CHECKPOINT, FitSettings, build_module, checkpoint_path, fit
from spira.training.logistic_fit import LogisticFitSettings, fit_logistic
from spira.training.pretrained import file_sha256
from spira.training.resume import ResumePoint, resume_point, run_fingerprint

log = logging.getLogger(__name__)


def fit_settings(cfg: DictConfig) -> FitSettings:
    """The typed settings of a fit from the train stage's config."""

    def plain(node: DictConfig) -> dict:
        return OmegaConf.to_container(node, resolve=True)

    model = plain(cfg.model)
    pretrained = model.pop("pretrained_checkpoint", None)
    logistic = model.pop("fit", None)
    return FitSettings(
        model=model,
        features=plain(cfg.features),
        optimizer=plain(cfg.train.optimizer),
        warmup_steps=int(cfg.train.warmup_steps),
        augment=augment_settings(cfg.augment),
        batch_size=int(cfg.train.batch_size),
        num_workers=int(cfg.train.num_workers),
        validation_sets=tuple(str(name) for name in cfg.train.validation_sets),
        seed=int(cfg.seed),
        callbacks=plain(cfg.callbacks),
        trainer=plain(cfg.trainer),
        allowed_targets=tuple(str(target) for target in cfg.checkpoint.allowed_targets),
        pretrained_checkpoint=None if pretrained is None else str(pretrained),
        logistic_fit=None
        if logistic is None
        else LogisticFitSettings(
            c_grid=tuple(float(c) for c in logistic["c_grid"]), cv_folds=int(logistic["cv_folds"]), max_iter=int(logistic["max_iter"])
        ),
    )


def fit_run(cfg: DictConfig, layout: Layout) -> dict:
    """Fit cfg.model in `layout`: checkpoints are written to layout.resume while training, and the
    run resumes from the last one there when it belongs to the same params, data and code
    (spira.training.resume); when training ends they are published to layout.checkpoints.

    Returns the training summary (empty on DDP ranks other than zero)."""
    settings = fit_settings(cfg)
    L.seed_everything(settings.seed, workers=True)
    # Made right after the seed: the initial weights depend on nothing else.
    module = build_module(settings, layout.features)
    if settings.logistic_fit is not None:
        return fit_logistic_run(cfg, settings, layout, module)
    params = OmegaConf.to_container(cfg, resolve=True)
    if settings.pretrained_checkpoint is not None:
        # The weights, not only their path: a resumed run must start from the same ones.
        params["pretrained_sha256"] = file_sha256(Path(settings.pretrained_checkpoint))
    fingerprint = run_fingerprint(params, [layout.prepared, layout.features])
    start = find_resume_point(cfg, layout, fingerprint)
    loggers = instantiate_loggers(cfg, wandb_run_id=start.wandb_run_id)
    summary = fit(settings, layout, module, start, fingerprint, loggers)
    if summary:
        publish_checkpoints(cfg, layout)
    return summary


def fit_logistic_run(cfg: DictConfig, settings: FitSettings, layout: Layout, module) -> dict:
    """A scikit-learn fit (spira.training.logistic_fit) takes seconds: it starts fresh, saves its
    checkpoint where a fit saves its best one, and publishes it the same way."""
    start_fresh(cfg, layout, "a logistic regression is fitted in one step, there is nothing to resume")
    checkpoint = checkpoint_path(settings.callbacks, layout.resume)
    summary = fit_logistic(module, settings.logistic_fit, layout.features, checkpoint, settings.seed, instantiate_loggers(cfg), settings.validation_sets)
    publish_checkpoints(cfg, layout)
    return summary


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
