"""Calibrating the ward-noise bounds on one's own prepared data (`spira calibrate-noise`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from spira.augment.noise_level import LABELS, NoiseBounds, calibrate_noise_bounds, read_recordings
from spira.data.manifest import MANIFEST_FILE, read_prepared_manifest
from spira.layout import PIPELINE


def calibrate_noise(cfg: DictConfig, split: str, label: str, quantile: float) -> tuple[NoiseBounds, str]:
    """Ward-noise bounds measured on the prepared `label` files of `split` ("all" for every one).

    Returns the bounds and a description of the files measured (counts only, no
    names). Raises FileNotFoundError without prepared data, ValueError when no
    file matches or none has a pause, soundfile.LibsndfileError for an unreadable file.
    """
    prepared_dir = PIPELINE.prepared
    if not (prepared_dir / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{prepared_dir}: no prepared data; run `dvc repro prepare` first")
    manifest = read_prepared_manifest(prepared_dir)
    if split != "all":
        manifest = manifest[manifest["split"] == split]
    if label != "all":
        manifest = manifest[manifest["label"] == LABELS[label]]
    selection = f"{label} files of the {split} split" if split != "all" else f"{label} files of all splits"
    if manifest.empty:
        raise ValueError(f"no {selection} in the prepared data")
    try:
        bounds = calibrate_noise_bounds(read_recordings(prepared_dir / path for path in manifest["path"]), quantile)
    except ValueError as error:
        raise ValueError(f"cannot calibrate on the {selection}: {error}") from error
    return bounds, selection
