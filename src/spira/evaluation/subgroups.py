"""Test metrics per subgroup: sex, age band, source and the recording properties prepare measured.

A model can be accurate on average and fail one group (older speakers, one
hospital, 8 kHz phone recordings, MP3 uploads). Each subgroup gets its counts and, when it
has at least `min_files` files of both classes, the metrics with
speaker-level intervals; smaller ones are reported as counts only, because an
accuracy on four files says nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

# Subgroup name -> prepared-manifest column.
SUBGROUP_COLUMNS = {
    "sex": "sex", "age_band": "age", "source": "source_id",
    "sample_rate": "source_sample_rate", "channels": "source_channels", "format": "source_format",
}  # fmt: skip
UNKNOWN = "unknown"


def age_band(ages: pd.Series, edges: Sequence[float]) -> pd.Series:
    """`<40`, `40-60`, `>=60` for edges [40, 60]; `unknown` where the age is missing."""
    edges = sorted(float(edge) for edge in edges)
    names = [f"<{edges[0]:g}"] + [f"{low:g}-{high:g}" for low, high in zip(edges, edges[1:])] + [f">={edges[-1]:g}"]
    ages = pd.to_numeric(ages, errors="coerce")
    bands = pd.Series(np.array(names, dtype=object)[np.searchsorted(edges, ages.fillna(0).to_numpy(), side="right")], index=ages.index)
    return bands.where(ages.notna(), UNKNOWN)


def subgroup_table(manifest: pd.DataFrame, age_edges: Sequence[float]) -> pd.DataFrame:
    """The subgroup of each file in every SUBGROUP_COLUMNS present in the manifest, indexed by file_id."""
    table = pd.DataFrame(index=manifest["file_id"].to_numpy())
    for name, column in SUBGROUP_COLUMNS.items():
        if column not in manifest:
            continue
        values = age_band(manifest[column], age_edges) if name == "age_band" else manifest[column]
        table[name] = pd.Series(values.to_numpy(), index=table.index).astype(object).where(lambda v: v.notna(), UNKNOWN).astype(str)
    return table


def subgroup_metrics(units: pd.DataFrame, groups: pd.DataFrame, min_files: int, measure: Callable[[pd.DataFrame], dict]) -> dict:
    """{subgroup: {value: counts, plus measure(rows) when large enough}} for scored files keyed like `groups` (by file_id)."""
    keyed = groups.reindex(units["file_id"].to_numpy())
    keyed.index = units.index
    report: dict = {}
    for name in groups.columns:
        report[name] = {}
        for value, rows in units.groupby(keyed[name].fillna(UNKNOWN).to_numpy(), sort=True):
            counts = {
                "n_files": int(len(rows)),
                "n_speakers": int(rows["speaker_id"].nunique()),
                "n_patients": int((rows["actual"] == 1).sum()),
                "n_controls": int((rows["actual"] == 0).sum()),
            }
            enough = counts["n_files"] >= min_files and counts["n_patients"] > 0 and counts["n_controls"] > 0
            report[name][str(value)] = counts | (measure(rows) if enough else {"status": f"counts only: fewer than {min_files} files or one class"})
    return report
