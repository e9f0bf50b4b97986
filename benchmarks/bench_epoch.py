"""This pipeline's training data path and epoch against a SPIRA-style baseline, in one run.

Baseline (SPIRA-ACL2021's training data path, rewritten here): a Dataset whose
item is one file: load it, insert ward noise (numpy, 4 clips on controls, 3 on
patients), cut the 4 s windows and compute their MFCC one window at a time
(torchaudio); batches of 5 files; a plain PyTorch training loop.
This pipeline: windows sliced from the train split held in memory, ward noise
and MFCC batched on the training device (`BatchWardNoise`, `MfccExtractor`),
Lightning's training loop. Same corpus (the prepared demo train split and its
featurized windows), same model (the configured one; the baseline's in the
default memory layout, the pipeline's as configured: `model.channels_last`,
the same function, tested), same noise recordings.

(a) data path alone, no model: what the DataLoader yields per process (the
baseline's are MFCC batches with noise; this pipeline's are raw windows, whose
noise and MFCC the training device adds), and batches of MFCC windows with
noise on the training device (the same work for both); (b) one training epoch
with noise insertion (forward, backward, optimiser step). Both print windows/s
and the ratio to the baseline. With `trainer=gpu` the model, and this pipeline's
noise and MFCC, run on the GPU; the baseline's data path stays on the CPU, as SPIRA's.

    python benchmarks/bench_epoch.py [--batches 40] [--workers 0] [--prepared data/prepared] [--features data/features] [override ...]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import lightning as L
import numpy as np
import soundfile as sf
import torch
import torchaudio.transforms as T
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Dataset

from spira.augment.pipeline import build_batch_noise, load_noise_clips, ward_noise_inserter
from spira.config import compose_config
from spira.data.manifest import read_prepared_manifest
from spira.features.windows import cut_windows, window_spec
from spira.features.store import load_split
from spira.pipeline.augment import augment_settings, ward_noise_settings
from spira.pipeline.training_run import fit_settings
from spira.training.data import AugmentedWaveformWindows
from spira.training.fit import build_module
from results_file import default_output, recorded

SPIRA_FILES_PER_BATCH = 5


class SpiraStyleFiles(Dataset):
    """One item per file: load, insert ward noise, per-window MFCC (SPIRA's Dataset.__getitem__)."""

    def __init__(self, cfg, prepared: Path):
        manifest = read_prepared_manifest(prepared)
        self.files = manifest[manifest["split"] == "train"].reset_index(drop=True)
        self.prepared = prepared
        self.spec = window_spec(cfg.features)
        self.noise = ward_noise_inserter(ward_noise_settings(cfg.augment.ward_noise), load_noise_clips(prepared, "train"))
        melkwargs = {key: int(cfg.features[key]) for key in ("n_fft", "win_length", "hop_length", "n_mels")}
        self.mfcc = T.MFCC(sample_rate=self.spec.sample_rate, n_mfcc=int(cfg.features.n_mfcc), log_mels=False, melkwargs=melkwargs)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, number: int):
        file = self.files.iloc[number]
        samples, _ = sf.read(self.prepared / file["path"], dtype="float32")
        samples = self.noise(samples, int(file["label"]), np.random.default_rng(int(torch.randint(0, 2**62, (1,)))))
        windows, _ = cut_windows(samples, self.spec)
        with torch.no_grad():
            features = torch.stack([self.mfcc(torch.from_numpy(window)).T for window in windows])
        return features, torch.full((len(windows),), float(file["label"]))


def collate_files(items):
    return torch.cat([features for features, _ in items]), torch.cat([labels for _, labels in items])


def baseline_loader(cfg, prepared: Path, workers: int) -> DataLoader:
    return DataLoader(SpiraStyleFiles(cfg, prepared), batch_size=SPIRA_FILES_PER_BATCH, shuffle=True, num_workers=workers, collate_fn=collate_files)


def pipeline_loader(cfg, prepared: Path, features: Path, workers: int) -> DataLoader:
    _, index = load_split(features, "train")
    dataset = AugmentedWaveformWindows(index, prepared, window_spec(cfg.features))
    return DataLoader(dataset, batch_size=int(cfg.train.batch_size), shuffle=True, num_workers=workers, persistent_workers=workers > 0)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def data_path_rates(cfg, prepared: Path, features: Path, workers: int, batches: int, device: torch.device) -> dict[str, tuple[float, float]]:
    """(baseline, pipeline) windows/s, no model: what the DataLoader yields ("loader"),
    and MFCC batches with ward noise on `device` ("to MFCC batches")."""
    torch.manual_seed(0)
    started, windows = time.perf_counter(), 0
    for number, (batch, _) in enumerate(baseline_loader(cfg, prepared, workers)):
        if number == batches:
            break
        windows += batch.to(device).shape[0]
    synchronize(device)
    baseline = windows / (time.perf_counter() - started)
    module = build_module(fit_settings(cfg), features).to(device)
    noise = build_batch_noise(augment_settings(cfg.augment), load_noise_clips(prepared, "train"), window_spec(cfg.features).window_samples)
    loader = pipeline_loader(cfg, prepared, features, workers)
    started, windows = time.perf_counter(), 0
    for number, (batch, *_) in enumerate(loader):
        if number == batches:
            break
        windows += batch.shape[0]
    loader_only = windows / (time.perf_counter() - started)
    started, windows = time.perf_counter(), 0
    with torch.no_grad():
        for number, (batch, labels, _, _) in enumerate(loader):
            if number == batches:
                break
            windows += module.featurizer(noise(batch.to(device), labels.to(device))).shape[0]
    synchronize(device)
    # The baseline's loader already yields MFCC batches with noise: one figure for both.
    return {"loader": (baseline, loader_only), "to MFCC batches": (baseline, windows / (time.perf_counter() - started))}


def baseline_epoch_rate(cfg, prepared: Path, features: Path, workers: int, batches: int, device: torch.device) -> float:
    torch.manual_seed(0)
    # SPIRA's model as SPIRA ran it: activations in the default memory layout.
    module = build_module(fit_settings(OmegaConf.merge(cfg, {"model": {"channels_last": False}})), features).to(device).train()
    optimizer = torch.optim.Adam(module.parameters(), lr=float(cfg.train.optimizer.lr), weight_decay=float(cfg.train.optimizer.weight_decay))
    started, windows = time.perf_counter(), 0
    for number, (batch_features, labels) in enumerate(baseline_loader(cfg, prepared, workers)):
        if number == batches:
            break
        batch_features, labels = batch_features.to(device), labels.to(device)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(module(batch_features), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        windows += labels.shape[0]
    synchronize(device)
    return windows / (time.perf_counter() - started)


class _Windows(L.Callback):
    def __init__(self):
        self.windows, self.started = 0, 0.0

    def on_train_epoch_start(self, trainer, module):
        self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.windows += batch[1].shape[0]

    def rate(self, device: torch.device) -> float:
        synchronize(device)
        return self.windows / (time.perf_counter() - self.started)


def pipeline_epoch_rate(cfg, prepared: Path, features: Path, workers: int, batches: int, device: torch.device) -> float:
    L.seed_everything(0, workers=True)
    module = build_module(fit_settings(cfg), features)
    module.batch_noise = build_batch_noise(augment_settings(cfg.augment), load_noise_clips(prepared, "train"), window_spec(cfg.features).window_samples)
    counter = _Windows()
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator, devices=1, precision=cfg.trainer.precision, max_epochs=1, limit_train_batches=batches,
        limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[counter],
    )
    trainer.fit(module, train_dataloaders=pipeline_loader(cfg, prepared, features, workers))
    return counter.rate(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=40, help="batches per measurement (baseline: of 5 files)")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers, both paths")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--features", type=Path, default=Path("data/features"))
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. trainer=gpu train.batch_size=64")
    parser.add_argument("--output", type=Path, default=default_output("bench_epoch"), help="also write the printed figures here, for `make docs` (default: %(default)s)")
    args = parser.parse_args()
    with recorded("bench_epoch", args.output):
        cfg = compose_config(["augment=spira_noise", *args.overrides])
        device = torch.device("cuda" if cfg.trainer.accelerator == "gpu" else "cpu")
        if device.type == "cpu":
            torch.set_num_threads(1)  # per process: DataLoader workers and DDP ranks each run one
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
        print(f"machine: {name}, {os.cpu_count()} CPUs, torch {torch.__version__}, threads {torch.get_num_threads()}, workers {args.workers}")
        print(f"model {cfg.model._target_.rsplit('.', 1)[-1]}, batch: {cfg.train.batch_size} windows (baseline: {SPIRA_FILES_PER_BATCH} files), {args.batches} batches each")
        for stage, (baseline, pipeline) in data_path_rates(cfg, args.prepared, args.features, args.workers, args.batches, device).items():
            where = f"on {device.type}" if stage != "loader" else "CPU, per process"
            line = f"data path ({stage}, {where})"
            print(f"{line:<42} baseline {baseline:8.1f} windows/s  pipeline {pipeline:8.1f} windows/s  ({pipeline / baseline:.2f} x baseline)")
        baseline = baseline_epoch_rate(cfg, args.prepared, args.features, args.workers, args.batches, device)
        pipeline = pipeline_epoch_rate(cfg, args.prepared, args.features, args.workers, args.batches, device)
        line = f"epoch (training, {device.type})"
        print(f"{line:<42} baseline {baseline:8.1f} windows/s  pipeline {pipeline:8.1f} windows/s  ({pipeline / baseline:.2f} x baseline)")


if __name__ == "__main__":
    main()
