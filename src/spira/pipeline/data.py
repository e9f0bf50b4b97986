"""The prepare step: validate, decode, resample and split the dataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from spira.data.prepare import PreparedDataset, prepare_dataset
from spira.data.settings import ColumnNames, NoiseSplitSettings, PrepareSettings, SaltSettings, SplitSettings
from spira.data.validate import file_check
from spira.layout import PIPELINE, Layout


def column_names(value: object) -> ColumnNames:
    """A data.columns entry: one name, a list of candidate names (a tuple here), or null."""
    if OmegaConf.is_config(value):
        value = OmegaConf.to_container(value, resolve=True)
    return tuple(str(name) for name in value) if isinstance(value, list) else (None if value is None else str(value))


def salt_settings(data: DictConfig) -> SaltSettings:
    variable = data.get("speaker_id_salt_env")
    return SaltSettings(
        dataset=str(data.name),
        config_salt=str(data.speaker_id_salt),
        environment_variable=str(variable) if variable else None,
        public_dataset=bool(data.get("public_dataset", False)),
    )


def prepare_settings(data: DictConfig) -> PrepareSettings:
    """The typed settings of prepare from the `data` config node."""
    split, noise_split = data.split, data.noise_split
    listed = data.get("noise_manifest")
    noise_columns = column_names(data.noise_columns)
    return PrepareSettings(
        root=Path(data.root),
        noise_root=Path(data.noise_root),
        manifests={str(key): str(name) for key, name in data.manifests.items()},
        columns={str(role): column_names(names) for role, names in data.columns.items()},
        noise_manifest=str(listed) if listed else None,
        noise_columns=noise_columns if isinstance(noise_columns, tuple) else (() if noise_columns is None else (noise_columns,)),
        labels={role: tuple(OmegaConf.to_container(data.labels[role], resolve=True)) for role in ("patient", "control")},
        check=file_check(int(data.sample_rate), data.validation, int(data.decode_block_frames)),
        report_paths=str(data.report_paths),
        num_workers=int(data.num_workers),
        max_quarantine_fraction=float(data.max_quarantine_fraction),
        split=SplitSettings(
            strategy=str(split.strategy),
            fractions={str(name): float(share) for name, share in split.fractions.items()},
            seed=int(split.seed),
            on_leak=str(split.on_leak),
            names={str(name): tuple(OmegaConf.to_container(cells, resolve=True)) for name, cells in split.names.items()},
        ),
        noise_split=NoiseSplitSettings(
            fractions={str(name): float(share) for name, share in noise_split.fractions.items()},
            seed=int(noise_split.seed),
            column=str(noise_split.column) if noise_split.get("column") else None,
        ),
        salt=salt_settings(data),
    )


def prepare_data(cfg: DictConfig, layout: Layout = PIPELINE) -> PreparedDataset:
    """Validate, decode, resample and split cfg.data into layout.prepared, quarantining bad
    rows (the report in layout.quarantine).

    Raises spira.data.rows.PrepareError (after writing the reports) when the run must fail."""
    return prepare_dataset(prepare_settings(cfg.data), layout.prepared, layout.quarantine)
