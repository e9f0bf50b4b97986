"""The prepare step: validate, decode, resample and split the dataset."""

from __future__ import annotations

from omegaconf import DictConfig

from spira.data.prepare import PreparedDataset, prepare_dataset
from spira.layout import PIPELINE, Layout


def prepare_data(cfg: DictConfig, layout: Layout = PIPELINE) -> PreparedDataset:
    """Validate, decode, resample and split cfg.data into layout.prepared, quarantining bad
    rows (the report in layout.quarantine).

    Raises spira.data.rows.PrepareError (after writing the reports) when the run must fail."""
    return prepare_dataset(cfg.data, layout.prepared, layout.quarantine)
