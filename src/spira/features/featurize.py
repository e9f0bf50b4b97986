"""Featurize: prepared audio -> per-split memory-mappable window arrays (MFCC or log-mel) + index.

Each file is transformed once and its windows sliced from it
(`MfccExtractor.file_windows`), in `features.num_workers` processes.

Besides the train/val/test splits it writes `val_noisy` and `test_noisy`: the
validation and test files with SPIRA's noisy-test protocol applied (by default
one ward-noise clip on each control, none on patients), each drawing only from
its own split of the noise recordings and seeded per file, so every run sees
the same sets. Without noise recordings there are no noisy sets, and the log says so.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from tqdm import tqdm

from spira.augment.noise import WardNoiseInserter
from spira.augment.pipeline import WardNoiseSettings, load_noise_clips, ward_noise_inserter
from spira.data.manifest import read_prepared_manifest
from spira.data.splits import SPLITS
from spira.features.egemaps import EgemapsExtractor
from spira.features.mfcc import MfccExtractor, build_extractor
from spira.features.store import FEATURES_FILE, INDEX_COLUMNS, INDEX_FILE, NOISY_SETS, NORMALIZATION_FILE
from spira.features.windows import WholeFileSpec, WindowSpec, window_spec
from spira.parallel import ordered_map
from spira.safety import staged_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeaturizeSettings:
    """What featurize reads: the features group (window shape and MFCC, resolved), the
    noisy sets' ward noise and seed, the worker count and whether to measure normalisation."""

    features: Mapping[str, Any]
    noisy_test: WardNoiseSettings
    noise_seed: int
    num_workers: int
    normalize: bool


def file_seed(seed: int, file_id: str) -> np.random.Generator:
    """A file's own random stream: the same noise for that file in every run."""
    return np.random.default_rng([seed, int(file_id, 16)])


def featurize(settings: FeaturizeSettings, prepared_dir: str | Path, out_dir: str | Path, inputs: dict[str, str | Path]) -> dict[str, int]:
    """Write `{name}.npy` (windows, frames, coefficients) float32 and `{name}_index.csv`
    for train, val, test, val_noisy and test_noisy; returns the window count of each.

    `out_dir` is replaced, complete or not at all (built in a staging
    sibling); it may not overlap `inputs` (name -> folder, besides the prepared
    data) or the repository (spira.safety)."""
    prepared_dir = Path(prepared_dir)
    manifest = read_prepared_manifest(prepared_dir)
    spec = window_spec(settings.features)
    extractor = build_extractor(settings.features)
    sets = {split: manifest[manifest["split"] == split] for split in SPLITS}
    noises = {}
    for name, split in NOISY_SETS.items():
        clips = load_noise_clips(prepared_dir, split)
        if not clips:
            log.warning("NO NOISY SET %s: the prepared data has no %s noise recordings (data.noise_root); only clean audio is evaluated", name, split)
            continue
        sets[name] = sets[split]
        noises[name] = ward_noise_inserter(settings.noisy_test, clips)
    # One pool for every set: (set, path, label, file id) in output order.
    tasks = [(name, *task) for name, files in sets.items() for task in zip(files["path"], files["label"].astype(int), files["file_id"])]
    work = partial(file_features, prepared_dir=prepared_dir, spec=spec, extractor=extractor, noises=noises, noise_seed=settings.noise_seed)
    with staged_folder(out_dir, "the features", {**inputs, "the prepared data": prepared_dir}) as staging:
        results = ordered_map(work, tasks, settings.num_workers)
        progress = tqdm(total=len(tasks), desc="featurize", unit="file", file=sys.stderr, mininterval=1.0)
        counts = {name: write_windows(name, files, staging, spec, extractor.num_features, results, progress) for name, files in sets.items()}
        progress.close()
        if settings.normalize:
            train = np.load(staging / FEATURES_FILE.format(split="train"), mmap_mode="r")
            mean = train.mean(axis=(0, 1), dtype=np.float64)
            std = train.std(axis=(0, 1), dtype=np.float64)
            (staging / NORMALIZATION_FILE).write_text(
                json.dumps({"mean": mean.round(6).tolist(), "std": np.maximum(std, 1e-6).round(6).tolist()}, indent=1) + "\n"
            )
            del train  # the memory map, before the folder is renamed
    return counts


def file_features(
    task: tuple[str, str, int, str],
    prepared_dir: Path,
    spec: WindowSpec | WholeFileSpec,
    extractor: MfccExtractor | EgemapsExtractor,
    noises: dict[str, WardNoiseInserter],
    noise_seed: int,
) -> tuple[np.ndarray, int]:
    """(windows, frames, coefficients) features of one prepared file and its padded samples.

    `task` is (set, path, label, file id); a noisy set (a key of `noises`) gets
    its ward noise first, seeded per file."""
    name, path, label, file_id = task
    samples, rate = sf.read(prepared_dir / path, dtype="float32")
    if rate != spec.sample_rate:
        raise ValueError(f"{prepared_dir / path}: {rate} Hz, features expect {spec.sample_rate} Hz")
    if name in noises:
        samples = noises[name](samples, label, file_seed(noise_seed, file_id))
    with torch.inference_mode():
        features, padded = extractor.file_windows(samples, spec)
    return np.asarray(features), padded


def write_windows(
    name: str,
    files: pd.DataFrame,
    out_dir: Path,
    spec: WindowSpec | WholeFileSpec,
    num_features: int,
    results: Iterator[tuple[np.ndarray, int]],
    progress: tqdm,
) -> int:
    """The next len(files) results (features, padded samples) into `{name}.npy` and its index.

    Results come from featurize's one pool in file order: the bytes are the
    same for any worker count."""
    total = int(sum(spec.count(n) for n in files["n_samples"]))
    array = np.lib.format.open_memmap(out_dir / FEATURES_FILE.format(split=name), mode="w+", dtype=np.float32, shape=(total, spec.frames, num_features))
    index_rows, row = [], 0
    for file, (features, padded) in zip(files.itertuples(index=False), results):
        array[row : row + len(features)] = features
        padded_seconds = round(padded / spec.sample_rate, 4)
        index_rows += [
            (file.file_id, number, number * spec.step_seconds, padded_seconds, file.label, file.speaker_id) for number in range(len(features))
        ]
        row += len(features)
        progress.update()
    array.flush()
    pd.DataFrame.from_records(index_rows, columns=INDEX_COLUMNS).to_csv(out_dir / INDEX_FILE.format(split=name), index=False)
    return total
