"""Training and validation batches: cached feature windows, or augmented audio windows."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import soundfile as sf
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, RandomSampler

from spira.augment.pipeline import Augmenter
from spira.data.manifest import read_prepared_manifest
from spira.features.windows import WindowSpec
from spira.features.store import has_split, load_split

log = logging.getLogger(__name__)

# The streams an epoch's seeds are drawn for, after (seed, epoch): EpochSeeds' global RNGs take the rank.
SHUFFLE_STREAM, WORKER_STREAM = 1 << 32, (1 << 32) + 1


def epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """A 32-bit seed that depends on (seed, epoch, stream) only."""
    return int(np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(1)[0])


class EpochShuffle(RandomSampler):
    """The training shuffle, and the base seed of the loader's workers (`worker_generator`), as
    functions of (seed, epoch) alone, not of the global RNG.

    Lightning creates the first epoch's iterator of every fit (and prefetches from it)
    before any epoch-start hook, so with the global RNG a resumed run's first epoch would
    draw from where seeding and the sanity check left it, not from its epoch's seed.
    Lightning calls `set_epoch` before every later epoch's iterator; the first epoch of a
    fit is given to the constructor. (Under DDP Lightning swaps in a DistributedSampler,
    itself a function of seed and epoch.)"""

    def __init__(self, data_source: Dataset, seed: int, epoch: int = 0):
        super().__init__(data_source, generator=torch.Generator())
        self.seed = int(seed)
        self.worker_generator = torch.Generator()
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        # Drawn from when the loader creates an epoch's iterator (always after this call).
        self.worker_generator.manual_seed(epoch_seed(self.seed, self.epoch, WORKER_STREAM))

    def __iter__(self):
        self.generator.manual_seed(epoch_seed(self.seed, self.epoch, SHUFFLE_STREAM))
        return super().__iter__()


class FeatureWindows(Dataset):
    """Yields (features, label, file number, window row) per window.

    File numbers and rows start at the offsets, so several sets (clean and
    noisy validation) can be concatenated and still aggregate per file."""

    def __init__(self, windows: np.ndarray, index: pd.DataFrame, file_offset: int = 0, row_offset: int = 0):
        self.windows = windows
        self.labels = index["label"].to_numpy(np.float32)
        # File number within the split: lets per-file aggregation run on tensors.
        self.file_numbers = pd.factorize(index["file_id"])[0].astype(np.int64) + file_offset
        self.row_offset = row_offset

    def __len__(self) -> int:
        return self.windows.shape[0]

    def __getitem__(self, row: int):
        features = torch.from_numpy(np.array(self.windows[row], dtype=np.float32))
        return features, torch.tensor(self.labels[row]), torch.tensor(self.file_numbers[row]), torch.tensor(row + self.row_offset)


def validation_windows(features_dir: Path, sets: list[str]) -> Dataset:
    """The featurized validation sets (clean `val`, noisy `val_noisy`) as one dataset; a
    set featurize did not write (no noise recordings) is left out, and the log says so."""
    parts: list[FeatureWindows] = []
    for name in sets:
        if not has_split(features_dir, name):
            log.warning("validation set %s was not featurized (no noise recordings?): model selection uses %s only", name, [s for s in sets if has_split(features_dir, s)])
            continue
        windows, index = load_split(features_dir, name)
        files = int(parts[-1].file_numbers.max()) + 1 if parts and len(parts[-1]) else 0
        rows = sum(len(part) for part in parts)
        parts.append(FeatureWindows(windows, index, file_offset=files, row_offset=rows))
    if not parts:
        raise ValueError(f"{features_dir}: none of the validation sets {sets} was featurized")
    return parts[0] if len(parts) == 1 else ConcatDataset(parts)


class AugmentedWaveformWindows(Dataset):
    """Yields (window samples, label, file number, window row) per window, optionally augmented.

    Windows are the ones featurize cut (same index), sliced from the split's
    prepared 16 kHz audio, read once into one array (with each file's offset):
    no file is opened per window, and DataLoader workers (forked) share the
    array. MFCCs, and ward noise alone (`BatchWardNoise`), are computed batched
    by the LightningModule on the training device; a per-window `augmenter`
    (audiomentations) runs here, afresh at every draw. Its randomness comes from
    torch's RNG: in the stage's process seeded per epoch (training.fit.EpochSeeds),
    in workers per worker from the epoch's base seed (EpochShuffle.worker_generator,
    seed_everything(workers=True); the loader starts its workers afresh every
    epoch), so the stream is reproducible and a resumed run draws what an
    uninterrupted one does.
    """

    def __init__(self, index: pd.DataFrame, prepared_dir: Path, spec: WindowSpec, augmenter: Augmenter | None = None):
        paths = read_prepared_manifest(prepared_dir).set_index("file_id")["path"]
        file_ids = index["file_id"].drop_duplicates().tolist()
        recordings = [sf.read(prepared_dir / paths.loc[file_id], dtype="float32")[0] for file_id in file_ids]
        lengths = np.array([recording.shape[0] for recording in recordings], dtype=np.int64)
        self.audio = np.concatenate(recordings) if recordings else np.zeros(0, np.float32)
        offsets = dict(zip(file_ids, np.cumsum(lengths) - lengths))
        ends = dict(zip(file_ids, np.cumsum(lengths)))
        window_starts = (index["start_seconds"].to_numpy() * spec.sample_rate).round().astype(np.int64)
        self.starts = index["file_id"].map(offsets).to_numpy(np.int64) + window_starts
        self.ends = index["file_id"].map(ends).to_numpy(np.int64)
        self.labels = index["label"].to_numpy(np.float32)
        self.file_numbers = pd.factorize(index["file_id"])[0].astype(np.int64)
        self.window_samples = spec.window_samples
        self.augmenter = augmenter

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, row: int):
        start = int(self.starts[row])
        samples = self.audio[start : min(start + self.window_samples, int(self.ends[row]))]
        window = np.zeros(self.window_samples, dtype=np.float32)
        window[: samples.shape[0]] = samples  # short files: zero padding, as in featurize
        if self.augmenter is not None:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,))))
            window = self.augmenter(window, int(self.labels[row]), rng)
        return torch.from_numpy(window), torch.tensor(self.labels[row]), torch.tensor(self.file_numbers[row]), torch.tensor(row)


class FeatureDataModule(L.LightningDataModule):
    """Train/val batches from featurize's output; with `audio_windows` (on-the-fly
    augmentation), training windows are sliced from the prepared audio instead and
    augmented per window by `augmenter` (if any) and per batch by the module.
    Validation covers `validation_sets` together (model selection sees clean and noisy audio)."""

    def __init__(
        self,
        features_dir: str | Path,
        batch_size: int,
        num_workers: int = 0,
        augmenter: Augmenter | None = None,
        prepared_dir: str | Path | None = None,
        spec: WindowSpec | None = None,
        audio_windows: bool = False,
        validation_sets: list[str] | tuple[str, ...] = ("val",),
        seed: int = 0,
    ):
        super().__init__()
        self.audio_windows = audio_windows or augmenter is not None
        if self.audio_windows and (prepared_dir is None or spec is None):
            raise ValueError("augmentation needs the prepared audio directory and the window spec")
        self.features_dir = Path(features_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmenter = augmenter
        self.prepared_dir = Path(prepared_dir) if prepared_dir is not None else None
        self.spec = spec
        self.validation_sets = list(validation_sets)
        self.seed = int(seed)
        self.datasets: dict[str, Dataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if "val" not in self.datasets:
            self.datasets["val"] = validation_windows(self.features_dir, self.validation_sets)
        if "train" not in self.datasets:
            windows, index = load_split(self.features_dir, "train")
            if not self.audio_windows:
                self.datasets["train"] = FeatureWindows(windows, index)
            else:
                self.datasets["train"] = AugmentedWaveformWindows(index, self.prepared_dir, self.spec, self.augmenter)

    def _loader(self, split: str, sampler: EpochShuffle | None = None) -> DataLoader:
        # Workers (and the split's audio they share) live for the whole fit, unless they
        # draw random augmentations: then they start afresh every epoch, seeded from the
        # epoch's seed, so an epoch's draws do not depend on the epochs before it.
        draws_randomness = split == "train" and self.augmenter is not None
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            sampler=sampler,
            generator=sampler.worker_generator if sampler is not None else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0 and not draws_randomness,
        )

    def train_dataloader(self) -> DataLoader:
        # The epoch this loader's first iterator serves: the one Lightning passes to set_epoch
        # (epochs finished; a resumed run's checkpoint restores it before this is called).
        epoch = self.trainer.fit_loop.epoch_progress.current.processed if self.trainer is not None else 0
        return self._loader("train", EpochShuffle(self.datasets["train"], self.seed, epoch))

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")
