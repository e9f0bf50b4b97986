"""The data steps: the demo cohort, prepare, the shortcut audit, featurize, and calibrating the ward-noise bounds."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from spira.augment.calibrate import LABELS, NoiseBounds, calibrate_noise_bounds, read_recordings
from spira.audit.shortcuts import audit_shortcuts, nuisance_table
from spira.data.manifest import MANIFEST_FILE, read_prepared_manifest
from spira.data.prepare import PreparedDataset, prepare_dataset
from spira.demo import DemoCohortConfig, generate_demo_cohort
from spira.features.featurize import featurize


def generate_demo(cfg: DictConfig) -> dict:
    """Write the seeded synthetic cohort to demo_cohort.out_dir; returns its counts."""
    options = OmegaConf.to_container(cfg.demo_cohort, resolve=True)
    out_dir = Path(options.pop("out_dir"))
    return generate_demo_cohort(out_dir, DemoCohortConfig(**options))


def prepare_data(cfg: DictConfig) -> PreparedDataset:
    """Validate, decode, resample and split cfg.data into data.out_dir, quarantining bad rows.

    Raises spira.data.rows.PrepareError (after writing the reports) when the run must fail."""
    return prepare_dataset(cfg.data)


log = logging.getLogger(__name__)


def audit_data(cfg: DictConfig) -> dict:
    """The shortcut audit of the prepared data: per nuisance property (and all together) the
    cross-validated AUROC of predicting the label from it alone, warned about above audit.warn_auroc."""
    prepared_dir = Path(cfg.data.out_dir)
    manifest = read_prepared_manifest(prepared_dir)
    table = nuisance_table(manifest, read_recordings(prepared_dir / path for path in manifest["path"]))
    result = audit_shortcuts(
        table, manifest["label"].to_numpy(), manifest["speaker_id"].to_numpy(), float(cfg.audit.warn_auroc), int(cfg.audit.folds), int(cfg.audit.seed)
    )
    for name in result["flagged"]:
        auroc = result["combined"]["auroc"] if name == "combined" else result["properties"][name]["auroc"]
        log.warning(
            "SHORTCUT: the label is predicted from %s with cross-validated AUROC %.3f (> audit.warn_auroc=%.2f); a model can learn it "
            "instead of the voice. Check how the classes were recorded; ward-noise insertion (augment=spira_noise) targets the noise floor.",
            "all nuisance properties together" if name == "combined" else f"{name} alone", auroc, result["warn_auroc"],
        )
    output = Path(cfg.audit.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    return result


def featurize_data(cfg: DictConfig) -> dict[str, int]:
    """MFCC windows of every split and of the noisy test set; returns the window count of each."""
    return featurize(cfg.features, cfg.data.out_dir, cfg.noisy_test)


def calibrate_noise(cfg: DictConfig, split: str, label: str, quantile: float) -> tuple[NoiseBounds, str]:
    """Ward-noise bounds measured on the prepared `label` files of `split` ("all" for every one).

    Returns the bounds and a description of the files measured (counts only, no
    names). Raises FileNotFoundError without prepared data, ValueError when no
    file matches or none has a pause, soundfile.LibsndfileError for an unreadable file.
    """
    prepared_dir = Path(cfg.data.out_dir)
    if not (prepared_dir / MANIFEST_FILE).is_file():
        raise FileNotFoundError(f"{prepared_dir}: no prepared data (data.out_dir); run `dvc repro prepare` first")
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
