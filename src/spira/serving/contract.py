"""The export folder's contract: the files it holds and what `model.json` says.

`model.json` is everything a consumer needs besides the ONNX network: the audio
it accepts, the feature front end that turns audio into the network's input,
the normalisation, how window outputs become one decision per file, and where
the model came from. Changing a key here is changing the contract: bump
SCHEMA_VERSION.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from spira.probability import apply_temperature

# 2: decision.temperature (a calibrated evaluation's temperature, or null).
# 3: features.name may be logmel (dct null) or egemaps (openSMILE functionals of the whole file),
#    features.num_features, features.f_min read by the front end.
SCHEMA_VERSION = 3
# Schema 1 has no temperature: its probabilities are the uncalibrated means. Schemas 1 and 2 are MFCC from 0 Hz.
READABLE_SCHEMAS = (1, 2, 3)
MODEL_FILE = "model.onnx"
CONTRACT_FILE = "model.json"
CARD_FILE = "MODEL_CARD.md"
CLASS_NAMES = ["control", "patient"]
INCONCLUSIVE = "inconclusive"
# The ONNX graph's input and output names.
INPUT_NAME = "features"
OUTPUT_NAME = "logits"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def calibrate(probability: float, decision: dict[str, Any]) -> float:
    """A file's probability as the decision reads it: temperature-scaled when evaluation was calibrated."""
    temperature = decision.get("temperature")
    return probability if temperature is None else float(apply_temperature(np.array([probability]), float(temperature))[0])


def decision_band(threshold: float, inconclusive_margin: float) -> tuple[float, float]:
    """[low, high): a file probability inside it is inconclusive; margin 0 gives the plain threshold."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"decision threshold {threshold} is not a probability")
    if inconclusive_margin < 0:
        raise ValueError(f"export.inconclusive_margin {inconclusive_margin} is negative")
    return max(0.0, threshold - inconclusive_margin), min(1.0, threshold + inconclusive_margin)


def decide(probability: float, decision: dict[str, Any]) -> str:
    """patient at or above the band, control below it, inconclusive inside it."""
    low, high = decision["inconclusive_band"]
    if probability >= high:
        return CLASS_NAMES[1]
    if probability < low:
        return CLASS_NAMES[0]
    return INCONCLUSIVE


def write_contract(export_dir: Path, contract: dict[str, Any]) -> None:
    (export_dir / CONTRACT_FILE).write_text(json.dumps(contract, indent=2) + "\n")


def read_contract(export_dir: Path) -> dict[str, Any]:
    """model.json of an export folder, checked against the ONNX file it describes.

    FileNotFoundError / ValueError name the folder and what is wrong with it."""
    path, model = export_dir / CONTRACT_FILE, export_dir / MODEL_FILE
    if not path.is_file() or not model.is_file():
        raise FileNotFoundError(f"{export_dir}: not a model export folder (needs {CONTRACT_FILE} and {MODEL_FILE}; run `dvc repro export`)")
    contract = json.loads(path.read_text())
    if contract.get("schema_version") not in READABLE_SCHEMAS:
        raise ValueError(f"{path}: schema_version {contract.get('schema_version')}, this code reads {list(READABLE_SCHEMAS)}")
    if file_sha256(model) != contract["onnx"]["sha256"]:
        raise ValueError(f"{model}: sha256 differs from the one in {CONTRACT_FILE}: the folder was modified after export")
    return contract
