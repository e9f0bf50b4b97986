"""Featurize: prepared audio -> per-split memory-mappable MFCC window arrays + index.

Besides the train/val/test splits it writes `val_noisy` and `test_noisy`: the
validation and test files with SPIRA's noisy-test protocol applied (by default
one ward-noise clip on each control, none on patients), each drawing only from
its own split of the noise recordings and seeded per file, so every run sees
the same sets. Without noise recordings there are no noisy sets, and the log says so.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from omegaconf import DictConfig

from spira.augment.noise import WardNoiseInserter
from spira.augment.pipeline import load_noise_clips, ward_noise_inserter
from spira.data.manifest import read_prepared_manifest
from spira.data.splits import SPLITS
from spira.features.mfcc import MfccExtractor, WindowSpec, build_extractor, cut_windows, window_spec
from spira.features.store import FEATURES_FILE, INDEX_COLUMNS, INDEX_FILE, NOISY_SETS, NORMALIZATION_FILE

log = logging.getLogger(__name__)


def file_seed(seed: int, file_id: str) -> np.random.Generator:
    """A file's own random stream: the same noise for that file in every run."""
    return np.random.default_rng([seed, int(file_id, 16)])


def featurize(features: DictConfig, prepared_dir: str | Path, noisy_test: DictConfig) -> dict[str, int]:
    """Write `{name}.npy` (windows, frames, n_mfcc) float32 and `{name}_index.csv`
    for train, val, test, val_noisy and test_noisy; returns the window count of each."""
    prepared_dir, out_dir = Path(prepared_dir), Path(features.out_dir)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    manifest = read_prepared_manifest(prepared_dir)
    spec = window_spec(features)
    extractor = build_extractor(features)
    counts = {split: write_windows(split, manifest[manifest["split"] == split], prepared_dir, out_dir, spec, extractor) for split in SPLITS}
    for name, split in NOISY_SETS.items():
        clips = load_noise_clips(prepared_dir, split)
        if not clips:
            log.warning("NO NOISY SET %s: the prepared data has no %s noise recordings (data.noise_root); only clean audio is evaluated", name, split)
            continue
        noise = ward_noise_inserter(noisy_test, clips)
        counts[name] = write_windows(name, manifest[manifest["split"] == split], prepared_dir, out_dir, spec, extractor, noise, int(noisy_test.seed))
    if features.normalize:
        train = np.load(out_dir / FEATURES_FILE.format(split="train"), mmap_mode="r")
        mean = train.mean(axis=(0, 1), dtype=np.float64)
        std = train.std(axis=(0, 1), dtype=np.float64)
        (out_dir / NORMALIZATION_FILE).write_text(
            json.dumps({"mean": mean.round(6).tolist(), "std": np.maximum(std, 1e-6).round(6).tolist()}, indent=1) + "\n"
        )
    return counts


def write_windows(
    name: str,
    files: pd.DataFrame,
    prepared_dir: Path,
    out_dir: Path,
    spec: WindowSpec,
    extractor: MfccExtractor,
    noise: WardNoiseInserter | None = None,
    noise_seed: int = 0,
) -> int:
    """MFCC windows of `files` into one memory-mapped array plus its index."""
    total = int(sum(spec.count(n) for n in files["n_samples"]))
    array = np.lib.format.open_memmap(
        out_dir / FEATURES_FILE.format(split=name), mode="w+", dtype=np.float32, shape=(total, spec.frames, extractor.mfcc.n_mfcc)
    )
    index_rows, row = [], 0
    for file in files.itertuples(index=False):
        samples, rate = sf.read(prepared_dir / file.path, dtype="float32")
        if rate != spec.sample_rate:
            raise ValueError(f"{prepared_dir / file.path}: {rate} Hz, features expect {spec.sample_rate} Hz")
        if noise is not None:
            samples = noise(samples, file.label, file_seed(noise_seed, file.file_id))
        windows, padded = cut_windows(samples, spec)
        with torch.inference_mode():
            array[row : row + len(windows)] = extractor(torch.from_numpy(windows)).numpy()
        padded_seconds = round(padded / spec.sample_rate, 4)
        index_rows += [
            (file.file_id, number, number * spec.step_seconds, padded_seconds, file.label, file.speaker_id) for number in range(len(windows))
        ]
        row += len(windows)
    array.flush()
    pd.DataFrame.from_records(index_rows, columns=INDEX_COLUMNS).to_csv(out_dir / INDEX_FILE.format(split=name), index=False)
    return total
