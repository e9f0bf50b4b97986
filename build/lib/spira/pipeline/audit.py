"""The shortcut audit step: can the label be predicted from nuisance properties alone?"""

from __future__ import annotations

import json
import logging

from omegaconf import DictConfig

from spira.augment.noise_level import read_recordings
from spira.audit.shortcuts import audit_shortcuts, nuisance_table
from spira.data.manifest import read_prepared_manifest
from spira.layout import PIPELINE, Layout
from spira.safety import write_text_atomic

log = logging.getLogger(__name__)


def audit_data(cfg: DictConfig, layout: Layout = PIPELINE) -> dict:
    """The shortcut audit of the prepared data: per nuisance property (and all together) the
    cross-validated AUROC of predicting the label from it alone, warned about above audit.warn_auroc."""
    prepared_dir = layout.prepared
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
    write_text_atomic(layout.audit, json.dumps(result, indent=2) + "\n")
    return result
