"""Export a window classifier's network to ONNX and build its contract.

torchaudio's MFCC does not export to ONNX (complex STFT), so the network alone
is exported, with a dynamic batch axis; the front end's parameters travel in
model.json and prediction runs the same front end in numpy before it (features.frontend).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import onnx_ir
import onnx_ir.traversal
import torch

from spira.features.egemaps import contract_settings as egemaps_contract_settings
from spira.features.frontend import AMIN, F_MIN, MEL_NORM, MEL_SCALE, TOP_DB
from spira.serving.contract import (
    CLASS_NAMES,
    INPUT_NAME,
    MODEL_FILE,
    OUTPUT_NAME,
    SCHEMA_VERSION,
    decision_band,
    file_sha256,
)

OPSET = 18
# Node metadata the exporter adds that holds absolute source paths: without it the
# file's bytes (and so the model version) do not depend on where spira is installed.
PATH_METADATA = "pkg.torch.onnx.stack_trace"


def drop_path_metadata(model: onnx_ir.Model) -> None:
    """Remove PATH_METADATA from every node of the graph, its subgraphs and its functions."""
    graphs = [model.graph, *model.functions.values()]
    for graph in graphs:
        for node in onnx_ir.traversal.RecursiveGraphIterator(graph):
            node.metadata_props.pop(PATH_METADATA, None)


def export_onnx(net: torch.nn.Module, num_frames: int, num_features: int, path: Path) -> str:
    """Write `net` (batch, frames, features) -> (batch,) logits as ONNX; returns the file's sha256."""
    net = net.eval()
    example = torch.zeros(2, num_frames, num_features)
    # The exporter logs every operator it registers; keep the stage's output readable.
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    program = torch.onnx.export(
        net,
        (example,),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: torch.export.Dim("batch")},),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    drop_path_metadata(program.model)
    program.save(str(path))
    return file_sha256(path)


def front_end_contract(features: dict[str, Any], num_frames: int) -> dict[str, Any]:
    """model.json's `features`: everything the numpy front end (features.frontend) needs to turn
    audio into the network's input, and the fixed settings it shares with torchaudio."""
    name = features.get("name", "mfcc")
    if name == "egemaps":
        return {
            "name": name,
            "sample_rate": features["sample_rate"],
            "num_features": int(features["num_features"]),
            "frames_per_window": num_frames,
            **egemaps_contract_settings(),
            "windowing": "one window per recording: the functionals of the whole file",
        }
    keys = ("sample_rate", "window_seconds", "step_seconds", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc", "log_mels")
    return {
        "name": name,
        **{key: features[key] for key in keys if key in features},
        "num_features": int(features["n_mfcc"] if name == "mfcc" else features["n_mels"]),
        "frames_per_window": num_frames,
        # torchaudio.transforms.MFCC's fixed settings, which both front ends use (features.frontend).
        "window_function": "hann (periodic)",
        "center": True,
        "pad_mode": "reflect",
        "power": 2.0,
        "mel_scale": MEL_SCALE,
        "mel_norm": MEL_NORM,
        "f_min": float(features.get("f_min", F_MIN)),
        "f_max": features["sample_rate"] / 2,
        "db": {"stype": "power", "multiplier": 10.0, "amin": AMIN, "ref": 1.0, "top_db": TOP_DB, "per": "window"},
        "dct": {"type": 2, "norm": "ortho"} if name == "mfcc" else None,
        "windowing": "windows of window_seconds every step_seconds; a shorter file is zero-padded to one window; the tail after the last full window is not used",
    }


def build_contract(
    *,
    model_name: str,
    onnx_sha256: str,
    num_frames: int,
    features: dict[str, Any],
    accepted_input: dict[str, Any],
    normalization: dict[str, list[float]],
    threshold: float,
    threshold_rule: str,
    temperature: float | None,
    inconclusive_margin: float,
    data_version: str | None,
    git_commit: str | None,
) -> dict[str, Any]:
    """model.json (see spira.serving.contract). The version is the ONNX file's
    content hash, so two exports with the same weights have the same version."""
    low, high = decision_band(threshold, inconclusive_margin)
    front_end = front_end_contract(features, num_frames)
    num_features = front_end["num_features"]
    return {
        "schema_version": SCHEMA_VERSION,
        "model": {"name": model_name, "version": onnx_sha256[:12]},
        "class_names": CLASS_NAMES,
        "input": accepted_input,
        "features": front_end,
        "normalization": {"mean": list(normalization["mean"]), "std": list(normalization["std"]), "applied": "(features - mean) / std per coefficient"},
        "onnx": {
            "file": MODEL_FILE,
            "sha256": onnx_sha256,
            "opset": OPSET,
            "input": {"name": INPUT_NAME, "shape": ["batch", num_frames, num_features], "dtype": "float32"},
            "output": {"name": OUTPUT_NAME, "shape": ["batch"], "meaning": "one logit per window; probability = sigmoid(logit)"},
        },
        "decision": {
            "aggregation": "mean of the window probabilities of a file",
            "temperature": temperature,
            "calibration": "none" if temperature is None else f"probability = sigmoid(logit(mean) / {temperature:g}), fitted on validation",
            "threshold": threshold,
            "threshold_rule": threshold_rule,
            "inconclusive_band": [low, high],
            "rule": f"{CLASS_NAMES[1]} when probability >= {high}, {CLASS_NAMES[0]} when < {low}, inconclusive in between",
        },
        "provenance": {"data_version": data_version, "git_commit": git_commit},
    }
