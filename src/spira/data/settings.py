"""What prepare reads of the `data` config, as typed settings (built by spira.pipeline.data.prepare_settings)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spira.data.validate import FileCheck

# data.columns: role -> one column name, candidate names (the first present is used), or None.
ColumnNames = str | tuple[str, ...] | None


@dataclass(frozen=True)
class SplitSettings:
    """data.split: how the dataset's files are split into train, val and test."""

    strategy: str  # speaker: a stratified speaker-disjoint split; given: the split each row comes with
    fractions: dict[str, float]
    seed: int
    on_leak: str  # fail | drop
    names: dict[str, tuple[str, ...]]  # split -> the cells that name it (strategy given)


@dataclass(frozen=True)
class NoiseSplitSettings:
    """data.noise_split: the ward-noise recordings' split into train, val and test noise."""

    fractions: dict[str, float]
    seed: int
    column: str | None = None  # the noise manifest's split column, when the splits are given


@dataclass(frozen=True)
class SaltSettings:
    """Where the salt of the hashed ids comes from (spira.data.privacy.resolve_salt)."""

    dataset: str
    config_salt: str
    environment_variable: str | None
    public_dataset: bool


@dataclass(frozen=True)
class PrepareSettings:
    """Everything prepare_dataset reads: the input folders and tables, the checks, the splits."""

    root: Path
    noise_root: Path
    manifests: dict[str, str]  # data.manifests key (a split, or "all") -> table relative to root
    columns: dict[str, ColumnNames]
    noise_manifest: str | None
    noise_columns: tuple[str, ...]
    labels: dict[str, tuple[object, ...]]  # "patient" / "control" -> the label cells of each
    check: FileCheck
    report_paths: str  # relative | hashed
    num_workers: int
    max_quarantine_fraction: float
    split: SplitSettings
    noise_split: NoiseSplitSettings
    salt: SaltSettings

    @property
    def sample_rate(self) -> int:
        return self.check.target_rate
