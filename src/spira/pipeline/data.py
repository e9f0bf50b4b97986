"""The prepare step: validate, decode, resample and split the dataset."""

from __future__ import annotations

from omegaconf import DictConfig

from spira.data.prepare import PreparedDataset, prepare_dataset


def prepare_data(cfg: DictConfig) -> PreparedDataset:
    """Validate, decode, resample and split cfg.data into data.out_dir, quarantining bad rows.

    Raises spira.data.rows.PrepareError (after writing the reports) when the run must fail."""
    return prepare_dataset(cfg.data)
