"""Training throughput (windows/s) with and without on-the-fly augmentation.

Runs real Lightning training steps of the configured model on the featurized
demo data (run `make repro` or `dvc repro featurize` first), once per augment
option, and prints windows per second and the ratio to `augment=none`.

    python benchmarks/bench_train_throughput.py [--batches 30] [--workers 0 2] [--augment none spira_noise ...] [override ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import lightning as L
import torch

from spira.augment.pipeline import build_augmenter, build_batch_noise, load_noise_clips
from spira.config import compose_config
from spira.features.windows import window_spec
from spira.layout import PIPELINE
from spira.pipeline.augment import augment_settings
from spira.pipeline.training_run import fit_settings
from spira.training.data import FeatureDataModule
from spira.training.fit import build_module
from results_file import default_output, recorded


class _Throughput(L.Callback):
    """Times training batches after a warm-up, excluding start-up and validation."""

    def __init__(self, warmup_batches: int):
        self.warmup_batches = warmup_batches
        self.windows = 0
        self.started = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        if batch_idx == self.warmup_batches:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup_batches:
            self.windows += batch[1].shape[0]

    def rate(self) -> float:
        return self.windows / (time.perf_counter() - self.started)


def measure(augment: str, workers: int, batches: int, overrides: list[str]) -> float:
    cfg = compose_config([f"augment={augment}", f"train.num_workers={workers}", *overrides])
    L.seed_everything(int(cfg.seed), workers=True)
    spec = window_spec(cfg.features)
    prepared_dir = PIPELINE.prepared
    augmenter = build_augmenter(augment_settings(cfg.augment), prepared_dir, spec.sample_rate)
    module = build_module(fit_settings(cfg), PIPELINE.features)
    module.batch_noise = build_batch_noise(augment_settings(cfg.augment), load_noise_clips(prepared_dir, "train"), spec.window_samples)
    datamodule = FeatureDataModule(
        PIPELINE.features, int(cfg.train.batch_size), workers, augmenter, prepared_dir, spec, audio_windows=module.batch_noise is not None
    )
    timer = _Throughput(warmup_batches=3)
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        max_epochs=1,
        limit_train_batches=batches + timer.warmup_batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
    )
    trainer.fit(module, datamodule=datamodule)
    return timer.rate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30, help="timed training batches per measurement")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader worker counts to try")
    parser.add_argument("--augment", nargs="+", default=["none", "spira_noise", "audiomentations"])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer=gpu train.batch_size=64")
    parser.add_argument("--output", type=Path, default=default_output("bench_train_throughput"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_train_throughput", args.output):
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}")
        for workers in args.workers:
            baseline = None
            for augment in args.augment:
                rate = measure(augment, workers, args.batches, args.overrides)
                baseline = baseline or rate
                print(f"workers={workers} augment={augment:<32} {rate:8.1f} windows/s  ({rate / baseline:.2f} x augment=none)")


if __name__ == "__main__":
    main()
