"""The export step: the evaluated checkpoint -> a self-contained model folder.

`models/export/` holds the network as ONNX, its contract
(model.json) and a generated model card: what the inference side needs,
without this repository, Lightning or the training config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from spira.data.manifest import read_prepared_manifest
from spira.data.validate import AUDIO_EXTENSIONS
from spira.evaluation.thresholds import describe_decision, read_decision
from spira.layout import PIPELINE, Layout
from spira.pipeline.model import STAGE_OUTPUTS
from spira.serving.card import model_card
from spira.serving.contract import CARD_FILE, MODEL_FILE, write_contract
from spira.serving.export import build_contract, export_onnx
from spira.tracking import data_version, git_commit
from spira.safety import staged_folder
from spira.training.checkpoint import load_module
from spira.training.fit import checkpoint_path


def accepted_input(data: DictConfig) -> dict[str, Any]:
    """The audio a model accepts: what prepare accepted for training."""
    validation = data.validation
    return {
        "formats": sorted(AUDIO_EXTENSIONS),
        "sample_rate": int(data.sample_rate),
        "resampling": "any rate in min_sample_rate..max_sample_rate, resampled to sample_rate (torchaudio's sinc_interp_hann, width 6, rolloff 0.99)",
        "channels": "any; averaged to mono",
        "peak_normalised": True,
        "min_seconds": float(validation.min_seconds),
        "min_sample_rate": int(validation.min_sample_rate),
        "max_sample_rate": int(validation.max_sample_rate),
        "silence_peak": float(validation.silence_peak),
        "clip_level": float(validation.clip_level),
        "max_clipped_fraction": float(validation.max_clipped_fraction),
    }


def export_model(cfg: DictConfig, test_metrics_path: Path = STAGE_OUTPUTS.test_metrics, layout: Layout = PIPELINE) -> dict[str, Any]:
    """Write layout.export: model.onnx, model.json and MODEL_CARD.md; returns the contract.

    The folder is built beside it and swapped in (spira.safety.staged_folder): a killed
    export leaves the previous export whole, never half a folder for `spira predict`."""
    module = load_module(checkpoint_path(cfg.callbacks, layout.checkpoints), list(cfg.checkpoint.allowed_targets))
    inputs = {**{key: OmegaConf.select(cfg, key) for key in ("data.root", "data.noise_root")}, "the prepared data": layout.prepared}
    with staged_folder(layout.export, "the export", inputs) as out_dir:
        return write_export(cfg, module, out_dir, test_metrics_path, layout)


def write_export(cfg: DictConfig, module: Any, out_dir: Path, test_metrics_path: Path, layout: Layout) -> dict[str, Any]:
    """The export's files, written into `out_dir` (the staging folder)."""
    hparams = module.hparams
    num_frames, num_features = int(hparams.net["num_frames"]), int(hparams.net["num_features"])
    sha256 = export_onnx(module.net, num_frames, num_features, out_dir / MODEL_FILE)
    decision = read_decision(test_metrics_path)
    threshold, rule = float(decision["threshold"]), describe_decision(decision)
    features = OmegaConf.to_container(hparams.features, resolve=True) if isinstance(hparams.features, DictConfig) else dict(hparams.features)
    contract = build_contract(
        model_name=str(hparams.net["_target_"]).rsplit(".", 1)[-1],
        onnx_sha256=sha256,
        num_frames=num_frames,
        features=features,
        accepted_input=accepted_input(cfg.data),
        normalization={"mean": module.feature_mean.tolist(), "std": module.feature_std.tolist()},
        threshold=threshold,
        threshold_rule=rule,
        temperature=decision.get("temperature"),
        inconclusive_margin=float(cfg.export.inconclusive_margin),
        data_version=data_version(layout.prepared),
        git_commit=git_commit(),
    )
    write_contract(out_dir, contract)
    manifest = read_prepared_manifest(layout.prepared)
    # The test sets' metrics; the threshold record is in the contract and the card's own line.
    test_metrics = {name: values for name, values in json.loads(Path(test_metrics_path).read_text()).items() if name != "threshold"}
    demo_data = Path(str(cfg.data.root)).resolve() == layout.demo.resolve()
    (out_dir / CARD_FILE).write_text(model_card(contract, test_metrics, manifest, demo_data))
    return contract
