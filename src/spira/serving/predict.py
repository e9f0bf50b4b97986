"""Score audio files with an exported model: the pipeline's decoder, windows and
front end, then the ONNX network in onnxruntime. No torch, no Lightning, no checkpoint.

A recording goes through what a training recording went through:
`data.validate.decode_and_check` (decoding, resampling, the same acceptance
checks, peak normalisation; prepare's own code), `features.windows.cut_windows`,
and the MFCC of the contract's front-end settings in numpy
(`features.frontend`, held to featurize's torch MFCC by tests/test_numpy_frontend.py).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import onnxruntime as ort
import soundfile as sf

from spira.data.validate import FileCheck, decode_and_check, file_check
from spira.features.egemaps import EgemapsExtractor
from spira.features.frontend import NumpyFrontEnd, build_numpy_extractor
from spira.features.windows import WholeFileSpec, WindowSpec, window_spec
from spira.serving.contract import INPUT_NAME, MODEL_FILE, calibrate, decide, read_contract

# The fields of every record, in the order the CSV output writes them.
RECORD_FIELDS = ("file", "status", "probability", "decision", "windows", "seconds", "model_version", "reason", "message")


@dataclass
class Predictor:
    """An export folder loaded once, then applied to any number of files."""

    contract: dict[str, Any]
    session: ort.InferenceSession
    spec: WindowSpec | WholeFileSpec
    extractor: NumpyFrontEnd | EgemapsExtractor
    check: FileCheck
    mean: np.ndarray
    std: np.ndarray
    batch_size: int = 256

    @property
    def version(self) -> str:
        return self.contract["model"]["version"]

    def features(self, samples: np.ndarray) -> np.ndarray:
        """(windows, frames, coefficients) features of peak-normalised samples at the contract's rate."""
        return self.extractor.file_windows(samples, self.spec)[0]

    def window_probabilities(self, features: np.ndarray) -> np.ndarray:
        """Sigmoid of the network's logit for each window of un-normalised features."""
        logits = []
        for start in range(0, features.shape[0], self.batch_size):
            batch = ((features[start : start + self.batch_size] - self.mean) / self.std).astype(np.float32)
            logits.append(self.session.run(None, {INPUT_NAME: batch})[0])
        return 1.0 / (1.0 + np.exp(-np.concatenate(logits).astype(np.float64)))

    def predict_file(self, path: str | Path, shown_name: str, max_seconds: float | None = None) -> dict[str, Any]:
        """One record: the file's probability and decision, or the reason it could not be scored.
        Messages name the file as `shown_name` only.

        `max_seconds` (the server's limit) refuses longer recordings as `too_long`: from the
        header's length before decoding, and again from the decoded length (MP3 headers only
        estimate it)."""
        record = dict.fromkeys(RECORD_FIELDS) | {"file": shown_name, "model_version": self.version}
        if max_seconds is not None and (declared := declared_seconds(path)) > max_seconds:
            return record | too_long(shown_name, declared, max_seconds, "its header declares")
        result, samples = decode_and_check(str(path), shown_name, self.check)
        if samples is None:
            return record | {"status": "error", "reason": result.reason, "message": result.message}
        seconds = samples.shape[0] / self.spec.sample_rate
        if max_seconds is not None and seconds > max_seconds:
            return record | too_long(shown_name, seconds, max_seconds, "it decodes to")
        probability = calibrate(float(self.window_probabilities(self.features(samples)).mean()), self.contract["decision"])
        return record | {
            "status": "ok",
            "probability": round(probability, 6),
            "decision": decide(probability, self.contract["decision"]),
            "windows": self.spec.count(samples.shape[0]),
            "seconds": round(seconds, 3),
        }


def declared_seconds(path: str | Path) -> float:
    """The length a file's header declares, in seconds; 0 when it has no readable header
    (`decode_and_check` then says what is wrong with it)."""
    try:
        info = sf.info(str(path))
    except Exception:  # libsndfile raises several types for unreadable input
        return 0.0
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def too_long(shown_name: str, seconds: float, max_seconds: float, source: str) -> dict[str, Any]:
    return {"status": "error", "reason": "too_long", "message": f"{shown_name}: {source} {seconds:.1f} s of audio, longer than the {max_seconds:g} s limit"}


def load_predictor(export_dir: str | Path) -> Predictor:
    """The model of an export folder; FileNotFoundError / ValueError when the folder is not one.
    The whole folder is read here: it may be deleted once this returns."""
    export_dir = Path(export_dir)
    contract = read_contract(export_dir)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(export_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"])
    normalization = contract["normalization"]
    return Predictor(
        contract=contract,
        session=session,
        spec=window_spec(contract["features"]),
        extractor=build_numpy_extractor(contract["features"]),
        check=file_check(contract["input"]["sample_rate"], contract["input"]),
        mean=np.asarray(normalization["mean"], dtype=np.float32),
        std=np.asarray(normalization["std"], dtype=np.float32),
    )


def write_records(records: list[dict[str, Any]], output_format: str, stream: TextIO) -> None:
    """jsonl: one JSON object per line; csv: one row per record with RECORD_FIELDS as columns."""
    if output_format == "jsonl":
        stream.writelines(json.dumps(record) + "\n" for record in records)
    elif output_format == "csv":
        writer = csv.DictWriter(stream, fieldnames=RECORD_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(records)
    else:
        raise ValueError(f"unknown output format {output_format!r}: use jsonl or csv")


def exit_status(records: list[dict[str, Any]]) -> int:
    """0 when every file was scored, 1 when some failed, 2 when none could be."""
    failed = sum(record["status"] != "ok" for record in records)
    return 0 if failed == 0 else 2 if failed == len(records) else 1
