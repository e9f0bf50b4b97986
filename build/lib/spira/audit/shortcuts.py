"""The shortcut audit: how well nuisance properties alone predict the label.

SPIRA's first models scored 98% by recognising the ward, not the voice. Before
any training, this measures, per nuisance property and for all of them
together, the cross-validated AUROC of a logistic regression that predicts the
label from that property only: recording source, original sample rate,
channels and file format, duration, loudness, noise floor in the pauses and clipping. Folds
keep each speaker's files together. A property near 0.5 carries no label
information; one above `warn_auroc` is a shortcut a network can learn instead
of the voice, and the audit says so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

# Manifest column -> property name; categorical ones are one-hot encoded.
MANIFEST_PROPERTIES = {
    "source_id": "source", "source_sample_rate": "sample_rate", "source_channels": "channels",
    "source_format": "format", "duration_seconds": "duration",
}  # fmt: skip
CATEGORICAL = ("source", "sample_rate", "channels", "format")
FRAME_SECONDS = 0.025
SILENT_DB = -120.0


def signal_properties(samples: np.ndarray, sample_rate: int) -> dict[str, float]:
    """Loudness (RMS, dB re full scale), noise floor (10th percentile of 25 ms frame RMS, dB)
    and clipping (fraction of samples within 0.1% of the file's peak) of one prepared recording."""
    samples = np.asarray(samples, dtype=np.float64)
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    frames = samples[: samples.size // frame * frame].reshape(-1, frame) if samples.size >= frame else samples.reshape(1, -1)
    frame_db = 20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 10 ** (SILENT_DB / 20)))
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    return {
        "loudness": float(20 * np.log10(max(math.sqrt(float(np.mean(samples**2))) if samples.size else 0.0, 10 ** (SILENT_DB / 20)))),
        "noise_floor": float(np.percentile(frame_db, 10)),
        "clipping": float(np.mean(np.abs(samples) >= 0.999 * peak)) if peak > 0 else 0.0,
    }


def nuisance_table(manifest: pd.DataFrame, recordings: Iterable[tuple[np.ndarray, int]]) -> pd.DataFrame:
    """One row per manifest row: the manifest's nuisance columns plus the measured signal properties."""
    table = pd.DataFrame({name: manifest[column] for column, name in MANIFEST_PROPERTIES.items() if column in manifest})
    measured = pd.DataFrame([signal_properties(samples, rate) for samples, rate in recordings], index=manifest.index)
    return pd.concat([table, measured], axis=1)


def _design(values: pd.DataFrame) -> np.ndarray:
    parts = []
    for name in values.columns:
        column = values[[name]]
        if name in CATEGORICAL:
            parts.append(OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit_transform(column.astype(str)))
        else:
            parts.append(column.astype(float).fillna(column.astype(float).median()).to_numpy())
    return np.hstack(parts)


def cross_validated_auroc(values: pd.DataFrame, labels: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> float | None:
    """Out-of-fold AUROC of a logistic regression on `values`, speaker-grouped folds; None when the
    values are constant (nothing to learn from)."""
    if all(values[name].astype(str).nunique() <= 1 for name in values.columns):
        return None
    design = _design(values)
    n_splits = min(folds, int(pd.Series(groups).nunique()), int(np.bincount(labels).min()))
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    prob = cross_val_predict(model, design, labels, groups=groups, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(labels, prob))


def audit_shortcuts(table: pd.DataFrame, labels: np.ndarray, groups: np.ndarray, warn_auroc: float, folds: int, seed: int) -> dict:
    """Per property and combined: cross-validated AUROC and whether it is above `warn_auroc`.

    {"properties": {name: {"auroc": x|None, "flagged": bool}}, "combined": {...}, "flagged": [names], "warn_auroc": w}"""
    labels = np.asarray(labels).astype(np.int64)
    properties = {}
    for name in table.columns:
        auroc = cross_validated_auroc(table[[name]], labels, groups, folds, seed)
        properties[name] = {"auroc": None if auroc is None else round(auroc, 4), "flagged": auroc is not None and auroc > warn_auroc}
    combined = cross_validated_auroc(table, labels, groups, folds, seed)
    flagged = [name for name, result in properties.items() if result["flagged"]]
    if combined is not None and combined > warn_auroc:
        flagged.append("combined")
    return {
        "warn_auroc": warn_auroc,
        "files": int(labels.size),
        "properties": properties,
        "combined": {"auroc": None if combined is None else round(combined, 4), "flagged": combined is not None and combined > warn_auroc},
        "flagged": flagged,
    }
