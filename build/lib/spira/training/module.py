"""LightningModule wrapping any window classifier built from config."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from torch.nn import functional as F

from spira.augment.noise import BatchWardNoise
from spira.metrics import aggregate_per_file, binary_metrics, file_loss
from spira.features.mfcc import build_extractor
from spira.training.schedule import noam_factor


class SpiraLitModule(L.LightningModule):
    """Binary window classifier trained with BCE, Adam-style optimiser and Noam warm-up.

    `net` is the model's config (`_target_` + kwargs) and is stored in the
    checkpoint with the features config and normalisation, so a checkpoint
    alone rebuilds the model for evaluation and inference, from features or
    from 16 kHz audio windows. Batches of raw windows (batch, samples), as the
    augmented training stream yields, get their ward noise (`batch_noise`) and
    are turned into MFCCs here, batched and on the training device.

    `threshold` only sets the cut of the validation accuracies; the DVC train
    stage leaves it at 0.5 and does not read `evaluate.threshold`, so moving
    the test decision threshold re-runs evaluate, never training (checkpoint
    selection and early stopping use the threshold-free `val/file_loss`).
    """

    def __init__(
        self,
        net: dict[str, Any],
        features: dict[str, Any],
        optimizer: dict[str, Any],
        warmup_steps: int,
        feature_mean: list[float] | None = None,
        feature_std: list[float] | None = None,
        threshold: float = 0.5,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = instantiate(net)
        self.featurizer = build_extractor(features)
        num_features = int(net["num_features"])
        mean = torch.tensor(feature_mean if feature_mean is not None else [0.0] * num_features)
        std = torch.tensor(feature_std if feature_std is not None else [1.0] * num_features)
        self.register_buffer("feature_mean", mean, persistent=False)
        self.register_buffer("feature_std", std, persistent=False)
        # Set by training with on-the-fly ward noise (augment.noise.BatchWardNoise);
        # not a hyperparameter: a checkpoint never carries noise recordings.
        self.batch_noise: BatchWardNoise | None = None
        self._val_outputs: list[torch.Tensor] = []
        # Per-file (file number, mean probability, label) of the last validation
        # epoch over the whole validation set, the same on every rank.
        self.val_file_predictions = np.empty((0, 3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Window logits for (batch, frames, coefficients) features."""
        return self.net((features - self.feature_mean) / self.feature_std)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        inputs, *rest = batch
        if inputs.dim() == 2:  # raw audio windows -> (batch, frames, coefficients)
            with torch.no_grad():
                if self.batch_noise is not None and self.training:
                    inputs = self.batch_noise(inputs, rest[0])
                inputs = self.featurizer(inputs)
        return [inputs, *rest]

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        features, labels, _, _ = batch
        loss = F.binary_cross_entropy_with_logits(self(features), labels)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=labels.shape[0])
        return loss

    def validation_step(self, batch, batch_idx: int) -> None:
        features, labels, file_numbers, rows = batch
        logits = self(features)
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.log("val/loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=labels.shape[0])
        self._val_outputs.append(torch.stack([rows.float(), torch.sigmoid(logits).float(), labels.float(), file_numbers.float()], dim=1))

    def on_validation_epoch_end(self) -> None:
        outputs = torch.cat(self._val_outputs) if self._val_outputs else torch.empty(0, 4, device=self.device)
        self._val_outputs.clear()
        if self.trainer.world_size > 1:
            # Every rank sees a shard (padded to equal length): gather, then
            # drop padding duplicates by window row so metrics cover the whole set.
            outputs = self.all_gather(outputs).reshape(-1, 4)
        outputs = outputs.detach().cpu().numpy().astype(np.float64)
        if outputs.shape[0] == 0:
            return
        _, first = np.unique(outputs[:, 0], return_index=True)
        outputs = outputs[first]
        window = binary_metrics(outputs[:, 2], outputs[:, 1], self.hparams.threshold)
        file_numbers, file_prob, file_label = aggregate_per_file(outputs[:, 3].astype(np.int64), outputs[:, 1], outputs[:, 2])
        self.val_file_predictions = np.stack([file_numbers, file_prob, file_label], axis=1)
        per_file = binary_metrics(file_label, file_prob, self.hparams.threshold)
        self.log("val/window_accuracy", window["accuracy"])
        self.log("val/file_loss", file_loss(file_label, file_prob))
        for name in ("accuracy", "balanced_accuracy", "auroc"):
            self.log(f"val/file_{name}", per_file[name])

    def configure_optimizers(self):
        optimizer = instantiate(self.hparams.optimizer)(self.parameters())
        warmup = int(self.hparams.warmup_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: noam_factor(step, warmup))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
