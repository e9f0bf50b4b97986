"""Build the training-time waveform augmentation from the augment settings.

spira.pipeline.augment turns the `augment` config group (and `noisy_test`) into
AugmentSettings and WardNoiseSettings; this module builds the augmenters from them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from hydra.utils import instantiate

from spira.errors import UserError
from spira.augment.noise import BatchWardNoise, WardNoiseInserter
from spira.data.manifest import NOISE_MANIFEST_FILE, read_noise_manifest
from spira.data.splits import SHARED_NOISE

# The audiomentations transform that mixes in recorded noise: it is given the train-split ward noise.
BACKGROUND_NOISE = "audiomentations.AddBackgroundNoise"

# (window samples, label, rng) -> augmented window samples
Augmenter = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class WardNoiseSettings:
    """SPIRA's ward-noise insertion: clips per control and per patient, their peak range, the chance a window gets them."""

    num_noise_control: int
    num_noise_patient: int
    min_amplitude: float
    max_amplitude: float
    probability: float = 1.0


@dataclass(frozen=True)
class AugmentSettings:
    """The training augmentation: ward noise, an audiomentations pipeline (a `_target_` dict), both or neither."""

    ward_noise: WardNoiseSettings | None = None
    audiomentations: Mapping[str, Any] | None = None


class NoNoiseError(UserError, ValueError):
    """Ward-noise insertion was asked for, but the prepared data has no (readable) noise recordings."""


def noise_files(prepared_dir: Path, split: str) -> list[Path]:
    """The prepared (16 kHz, peak-normalised) ward-noise recordings of one noise split
    (plus the shared ones, when there were too few to split), in manifest order."""
    if not (prepared_dir / NOISE_MANIFEST_FILE).exists():
        return []
    noise = read_noise_manifest(prepared_dir)
    if "split" in noise:
        noise = noise[noise["split"].isin([split, SHARED_NOISE])]
    return [prepared_dir / relative for relative in noise["path"]]


def load_noise_clips(prepared_dir: Path, split: str) -> list[np.ndarray]:
    """The samples of noise_files(prepared_dir, split)."""
    return [read_noise_clip(path) for path in noise_files(prepared_dir, split)]


def read_noise_clip(path: Path) -> np.ndarray:
    """One prepared noise recording; NoNoiseError naming it when it is unreadable or empty
    (prepare accepted it, so the prepared folder was changed since)."""
    try:
        samples = sf.read(path, dtype="float32")[0]
    except (sf.LibsndfileError, OSError) as error:
        raise NoNoiseError(f"{path}: prepared ward-noise recording cannot be read ({error}); rerun prepare (dvc repro prepare)") from error
    if not len(samples):
        raise NoNoiseError(f"{path}: prepared ward-noise recording is empty (0 samples); rerun prepare (dvc repro prepare)")
    return samples


def ward_noise_inserter(settings: WardNoiseSettings, noise_clips: list[np.ndarray]) -> WardNoiseInserter:
    return WardNoiseInserter(
        noise_clips,
        num_noise_control=settings.num_noise_control,
        num_noise_patient=settings.num_noise_patient,
        min_amplitude=settings.min_amplitude,
        max_amplitude=settings.max_amplitude,
        probability=settings.probability,
    )


def training_noise_clips(augment: AugmentSettings, prepared_dir: Path) -> list[np.ndarray]:
    """The train-split ward-noise recordings the augment option inserts ([] for an option
    without ward noise); NoNoiseError when it needs noise and the prepared data has none."""
    if augment.ward_noise is None:
        return []
    clips = load_noise_clips(prepared_dir, "train")
    if not clips:
        raise NoNoiseError(
            f"ward-noise insertion (augment.ward_noise) needs noise recordings, but {prepared_dir / NOISE_MANIFEST_FILE} "
            "lists none for training: pass data.noise_root=<folder of ward-noise recordings>, or augment=none to train without noise insertion"
        )
    return clips


def build_augmenter(augment: AugmentSettings, prepared_dir: Path, sample_rate: int) -> Augmenter | None:
    """The per-window (numpy, DataLoader worker) augmenter: an audiomentations Compose,
    after ward-noise insertion when the option has both. None when nothing runs per
    window: `augment=none`, or ward noise alone, which `build_batch_noise` inserts batched
    on the training device."""
    if augment.audiomentations is None:
        return None
    steps: list[Augmenter] = []
    if augment.ward_noise is not None:
        steps.append(ward_noise_inserter(augment.ward_noise, training_noise_clips(augment, prepared_dir)))
    compose = instantiate(with_training_noise(augment.audiomentations, prepared_dir), _convert_="all")
    # audiomentations draws from numpy's global RNG, which training seeds per
    # epoch and Lightning per worker (seed_everything(workers=True)), so runs stay reproducible.
    steps.append(lambda samples, label, rng: compose(samples=samples, sample_rate=sample_rate))

    def augment_window(samples: np.ndarray, label: int, rng: np.random.Generator) -> np.ndarray:
        for step in steps:
            samples = step(samples, label, rng)
        return samples.astype(np.float32, copy=False)

    return augment_window


def with_training_noise(compose: Mapping[str, Any], prepared_dir: Path) -> dict[str, Any]:
    """The audiomentations config with every AddBackgroundNoise drawing the train-split ward
    noise (validation and test noise are never heard in training); NoNoiseError without any."""
    compose = copy.deepcopy(dict(compose))
    for transform in compose.get("transforms", []):
        if transform.get("_target_") == BACKGROUND_NOISE and "sounds_path" not in transform:
            files = noise_files(prepared_dir, "train")
            if not files:
                raise NoNoiseError(f"{BACKGROUND_NOISE} needs noise recordings, but {prepared_dir / NOISE_MANIFEST_FILE} lists none for training: "
                                   "pass data.noise_root=<folder of ward-noise recordings>, or remove the transform")  # fmt: skip
            transform["sounds_path"] = [str(path) for path in files]
    return compose


def build_batch_noise(augment: AugmentSettings, noise_clips: list[np.ndarray], window_samples: int) -> BatchWardNoise | None:
    """Ward-noise insertion on whole batches on the training device, for an option with
    ward noise and no per-window augmenter (with one, noise goes first, per window)."""
    if augment.ward_noise is None or augment.audiomentations is not None:
        return None
    return BatchWardNoise(ward_noise_inserter(augment.ward_noise, noise_clips), window_samples)
