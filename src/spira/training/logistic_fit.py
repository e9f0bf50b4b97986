"""Fitting `models.logistic.LogisticRegression` with scikit-learn instead of gradient descent.

The train split's features, standardised as the module standardises them (featurize's train
mean and std), are fitted by scikit-learn's class-balanced L2 logistic regression (lbfgs).
Its inverse regularisation C is chosen on the train split alone: for each C of the grid, the
out-of-fold probabilities of a speaker-grouped, class-stratified K-fold (no speaker in two
folds) give one AUROC; the best wins, ties going to the smaller C (the stronger prior). The
fitted coefficients are copied into the module, which Lightning then validates and saves as
any trained model's checkpoint, so evaluate, the gate, export and serving take it as they
take a network. Augmentation does not apply: the fit reads the train features as featurized.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from spira.errors import UserError
from spira.features.store import load_split
from spira.training.data import FeatureDataModule
from spira.training.module import SpiraLitModule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogisticFitSettings:
    """model.fit of a logistic-regression model: the C grid, the folds of its choice, lbfgs' iteration cap."""

    c_grid: tuple[float, ...]
    cv_folds: int
    max_iter: int


@dataclass(frozen=True)
class CChoice:
    c: float
    auroc: float
    # C -> out-of-fold AUROC on the train split, for every C of the grid.
    grid: dict[float, float]
    folds: int


def standardised(module: SpiraLitModule, windows: np.ndarray) -> np.ndarray:
    """(n, frames, features) -> (n, features) float64: the module's standardisation, averaged over frames
    as the network averages them."""
    mean = module.feature_mean.double().numpy()
    std = module.feature_std.double().numpy()
    return ((np.asarray(windows, dtype=np.float64) - mean) / std).mean(axis=1)


def classifier(c: float, max_iter: int) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", solver="lbfgs", max_iter=max_iter)


def choose_c(x: np.ndarray, y: np.ndarray, speakers: np.ndarray, fit: LogisticFitSettings, seed: int) -> CChoice:
    """The C of `fit.c_grid` with the best out-of-fold AUROC of a speaker-grouped stratified K-fold."""
    if not fit.c_grid:
        raise UserError("model.fit.c_grid is empty: give at least one C")
    n_speakers = {label: len(set(speakers[y == label])) for label in (0, 1)}
    folds = min(fit.cv_folds, *n_speakers.values())
    if folds < 2:
        raise UserError(f"the train split has {n_speakers[1]} patient and {n_speakers[0]} control speakers: choosing C needs at least 2 of each")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(x, y, groups=speakers))
    grid = {}
    for c in sorted(float(value) for value in fit.c_grid):
        out_of_fold = np.empty(len(y))
        for train, held_out in splits:
            out_of_fold[held_out] = classifier(c, fit.max_iter).fit(x[train], y[train]).predict_proba(x[held_out])[:, 1]
        grid[c] = float(roc_auc_score(y, out_of_fold))
    best = max(grid.values())
    chosen = min(c for c, auroc in grid.items() if auroc == best)
    return CChoice(c=chosen, auroc=best, grid=grid, folds=folds)


def fit_logistic(module: SpiraLitModule, fit: LogisticFitSettings, features_dir: Path, checkpoint: Path, seed: int, loggers: list, validation_sets: tuple[str, ...]) -> dict[str, Any]:
    """Fit `module.net` (a LogisticRegression) on the train features, validate it, save it as `checkpoint`;
    returns the training summary (train.json): the chosen C with the grid's numbers, and the validation metrics."""
    windows, index = load_split(features_dir, "train")
    x = standardised(module, windows)
    y = index["label"].to_numpy(dtype=np.int64)
    speakers = index["speaker_id"].to_numpy(dtype=str)
    choice = choose_c(x, y, speakers, fit, seed)
    log.info(
        "C = %g: out-of-fold AUROC %.4f on the train split (%d speaker-grouped folds); grid %s",
        choice.c, choice.auroc, choice.folds, ", ".join(f"C={c:g}: {auroc:.4f}" for c, auroc in choice.grid.items()),
    )  # fmt: skip
    fitted = classifier(choice.c, fit.max_iter).fit(x, y)
    with torch.no_grad():
        module.net.linear.weight.copy_(torch.from_numpy(fitted.coef_).float())
        module.net.linear.bias.copy_(torch.from_numpy(fitted.intercept_).float())
    datamodule = FeatureDataModule(features_dir, batch_size=256, validation_sets=list(validation_sets), seed=seed)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=loggers or False, enable_progress_bar=False, enable_model_summary=False, max_epochs=0)
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    trainer.save_checkpoint(checkpoint, weights_only=True)
    return {
        "best_epoch": 0,
        "epochs_run": 0,
        "parameters": int(sum(p.numel() for p in module.net.parameters())),
        "fit": {"C": choice.c, "cv_folds": choice.folds, "cv_file_auroc": round(choice.auroc, 6), "cv_grid": {f"{c:g}": round(a, 6) for c, a in choice.grid.items()}},
        **{key: round(float(value), 6) for key, value in sorted(metrics.items())},
    }
