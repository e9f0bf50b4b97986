"""Reading the input: every manifest row, and every ward-noise file, becomes an Entry.

Problems the row itself shows (no file path, a missing or unknown label, an
unknown given split, another number of fields than the header) quarantine the
entry here. A configuration that does not fit the files (no manifest, no label
column) stops the run with a PrepareError.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spira.errors import UserError
from spira.data.privacy import salted_id
from spira.data.settings import ColumnNames, PrepareSettings
from spira.data.splits import SPLITS
from spira.data.tables import Table, read_table
from spira.data.validate import AUDIO_EXTENSIONS, QUARANTINE_REASONS, FileResult

log = logging.getLogger(__name__)

# Entry.set: a row of the dataset's manifests, or a file of the ward-noise set.
DATASET, NOISE = "dataset", "noise"
# A data.manifests key naming no split: the rows carry their own split column, or none.
ANY_SPLIT = "all"
OPTIONAL_COLUMNS = ("speaker", "sex", "age", "severity", "source", "split")
MISSING_VALUES = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
SEX_VALUES = {
    "F": frozenset({"f", "female", "feminino", "fem", "mulher", "woman", "w"}),
    "M": frozenset({"m", "male", "masculino", "masc", "homem", "man"}),
}


class PrepareError(UserError, RuntimeError):
    """The data cannot be prepared as configured; the message says why and what to change."""


@dataclass
class Entry:
    """One input row on its way to the prepared manifest or to quarantine."""

    set: str
    manifest: str
    line: int
    order: int  # position in reading order: the first of two duplicates is the one kept
    raw_path: str
    shown_path: str = ""
    relative: str = ""
    file_id: str = ""
    label: int | None = None
    speaker_id: str = ""
    split: str = ""
    sex: str = ""
    age: float = math.nan
    severity: float = math.nan
    source_id: str = ""
    reason: str | None = None
    message: str = ""
    warnings: list[tuple[str, str]] = field(default_factory=list)
    result: FileResult | None = None

    @property
    def accepted(self) -> bool:
        return self.reason is None

    def quarantine(self, reason: str, message: str) -> None:
        assert reason in QUARANTINE_REASONS, reason
        self.reason, self.message = reason, message


def normalise_token(value: object) -> str:
    """Lower-case text; integral numbers as integers, so 1, 1.0 and "1" agree."""
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def label_lookup(labels: Mapping[str, Sequence[object]]) -> dict[str, int]:
    lookup = {normalise_token(value): 1 for value in labels["patient"]}
    overlap = {normalise_token(value) for value in labels["control"]} & set(lookup)
    if overlap:
        raise PrepareError(f"data.labels: {sorted(overlap)} listed as both patient and control")
    return lookup | {normalise_token(value): 0 for value in labels["control"]}


def split_lookup(names: Mapping[str, Sequence[object]]) -> dict[str, str]:
    return {normalise_token(value): split for split in SPLITS for value in names[split]}


def parse_number(text: str) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return math.nan


def parse_sex(text: str) -> str:
    token = text.strip().lower()
    return next((code for code, values in SEX_VALUES.items() if token in values), "")


def shown_names(names: ColumnNames) -> str | list[str] | None:
    """A data.columns entry as params.yaml writes it: one name, a list of names, or null."""
    return list(names) if isinstance(names, tuple) else names


def read_input_table(path: Path) -> Table:
    """read_table, with an unreadable or malformed table as a PrepareError naming it."""
    try:
        return read_table(path)
    except ValueError as error:
        raise PrepareError(str(error)) from error
    except OSError as error:
        raise PrepareError(f"{path}: cannot be read ({error.strerror})") from error


def read_manifest_table(root: Path, key: str, name: str, columns: Mapping[str, ColumnNames]) -> tuple[Table, str, str, dict[str, str | None]]:
    """The table, its file and label columns, and which optional columns it has."""
    path = root / name
    if not path.is_file():
        raise PrepareError(f"{path}: manifest not found (data.manifests.{key}); is data.root right?")
    table = read_input_table(path)
    file_column, label_column = table.column(columns["file"]), table.column(columns["label"])
    for role, found in (("file", file_column), ("label", label_column)):
        if found is None:
            raise PrepareError(
                f"{path}: no {role} column (data.columns.{role} = {shown_names(columns[role])}); its header is {list(table.header)}"
            )
    optional = {role: table.column(columns.get(role)) for role in OPTIONAL_COLUMNS}
    return table, file_column, label_column, optional


def read_dataset_rows(settings: PrepareSettings, salt: str) -> tuple[list[Entry], list[dict], bool]:
    """Entries for every row of every manifest, with row-level problems already quarantined.

    Returns the entries, what was detected about each manifest (encoding,
    delimiter) and whether the dataset gives speaker ids.
    """
    root = settings.root
    labels, splits = label_lookup(settings.labels), split_lookup(settings.split.names)
    strategy = settings.split.strategy
    entries: list[Entry] = []
    manifests, speaker_ids_given = [], True
    for key, name in settings.manifests.items():
        if key != ANY_SPLIT and key not in SPLITS:
            raise PrepareError(f"data.manifests.{key}: keys are {list(SPLITS)} or '{ANY_SPLIT}'")
        table, file_column, label_column, optional = read_manifest_table(root, key, name, settings.columns)
        manifests.append({"name": str(name), "rows": len(table.rows), "encoding": table.encoding, "delimiter": table.delimiter})
        if optional.get("speaker") is None:
            speaker_ids_given = False
        if strategy == "given" and key == ANY_SPLIT and optional.get("split") is None:
            raise PrepareError(
                f"{root / name}: data.split.strategy is 'given' but the file has no split column "
                f"(data.columns.split) and its data.manifests key is '{ANY_SPLIT}'"
            )
        index = {column: position for position, column in enumerate(table.header)}
        for row in table.rows:
            entry = Entry(DATASET, str(name), row.line, len(entries), raw_path="")
            entries.append(entry)
            if len(row.fields) != len(table.header):
                # Kept only to show where the row points (check_paths hides paths outside the root).
                entry.raw_path = row.fields[index[file_column]] if index[file_column] < len(row.fields) else ""
                entry.quarantine("malformed_row", f"{name} line {row.line}: {len(row.fields)} fields, the header has {len(table.header)}")
                continue
            cell = {role: row.fields[index[column]] for role, column in optional.items() if column is not None}
            entry.raw_path = row.fields[index[file_column]]
            entry.label = labels.get(normalise_token(row.fields[index[label_column]]))
            entry.speaker_id = salted_id(cell["speaker"], salt) if cell.get("speaker", "").lower() not in MISSING_VALUES else ""
            entry.sex = parse_sex(cell.get("sex", ""))
            entry.age = parse_number(cell.get("age", ""))
            entry.severity = parse_number(cell.get("severity", ""))
            entry.source_id = salted_id(cell["source"], salt) if cell.get("source", "") else ""
            entry.split = key if key in SPLITS else splits.get(normalise_token(cell.get("split", "")), "")
            label_text = row.fields[index[label_column]]
            if not entry.raw_path:
                entry.quarantine("malformed_row", f"{name} line {row.line}: no file path")
            elif label_text.strip().lower() in MISSING_VALUES:
                entry.quarantine("missing_label", f"{name} line {row.line}: no label")
            elif entry.label is None:
                entry.quarantine("unknown_label", f"{name} line {row.line}: label {label_text!r} is not in data.labels")
            elif strategy == "given" and not entry.split:
                entry.quarantine("unknown_split", f"{name} line {row.line}: split {cell.get('split', '')!r} is not in data.split.names")
    return entries, manifests, speaker_ids_given


def read_noise_rows(settings: PrepareSettings, first_order: int) -> tuple[list[Entry], dict]:
    """The ward-noise set: the files `noise_manifest` lists, or every audio file under noise_root."""
    noise_root, root = settings.noise_root, settings.root
    if not noise_root.is_dir():
        raise PrepareError(f"{noise_root}: data.noise_root is not a folder")
    listed = settings.noise_manifest
    if listed and (noise_root / listed).is_file():
        table = read_input_table(noise_root / listed)
        column = table.column(settings.noise_columns)
        if column is None:
            raise PrepareError(f"{noise_root / listed}: no column among data.noise_columns {list(settings.noise_columns)}; header {list(table.header)}")
        position = table.header.index(column)
        split_position = None
        if settings.noise_split.column is not None:
            split_column = table.column(settings.noise_split.column)
            if split_column is None:
                raise PrepareError(f"{noise_root / listed}: no split column {settings.noise_split.column!r} (data.noise_split.column); header {list(table.header)}")
            split_position = table.header.index(split_column)
        splits = split_lookup(settings.split.names)
        entries = []
        for number, row in enumerate(table.rows):
            entry = Entry(NOISE, str(listed), row.line, first_order + number, raw_path=row.fields[position] if position < len(row.fields) else "")
            entries.append(entry)
            cell = row.fields[split_position] if split_position is not None and split_position < len(row.fields) else ""
            if not entry.raw_path:
                entry.quarantine("malformed_row", f"{listed} line {entry.line}: no file path")
            elif split_position is not None:
                entry.split = splits.get(normalise_token(cell), "")
                if not entry.split:
                    entry.quarantine("unknown_split", f"{listed} line {entry.line}: split {cell!r} is not in data.split.names")
        return entries, {"name": str(listed), "rows": len(table.rows), "encoding": table.encoding, "delimiter": table.delimiter}
    if noise_root.resolve() == root.resolve():
        log.warning("no ward-noise set: %s has no %s; pass data.noise_root=<noise folder> (or use augment=none)", noise_root, listed)
        return [], {"name": None, "rows": 0}
    if settings.noise_split.column is not None:
        log.warning("no noise manifest to read data.noise_split.column from: the noise recordings are split by data.noise_split.fractions")
    files = sorted(p.relative_to(noise_root).as_posix() for p in noise_root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    log.info("ward-noise set: %d audio files found under data.noise_root (no %s there)", len(files), listed)
    scan = "(folder scan)"
    return [Entry(NOISE, scan, 0, first_order + number, raw_path=path) for number, path in enumerate(files)], {"name": scan, "rows": len(files)}
