"""Prepare: manifests -> validated 16 kHz mono peak-normalised audio, speaker-disjoint splits.

Every input row (dataset and ward-noise set alike) ends either in the prepared
manifest or in the quarantine report with a reason; nothing is dropped
silently and no bad file stops the run. The run fails only by the rules in
`check_failures`, after the reports are written, with a message naming the
cause.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import shutil
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from spira.data.audio import MIN_FILES_FOR_WORKERS
from spira.data.privacy import resolve_salt, salted_id
from spira.data.splits import SPLITS, assign_splits
from spira.data.tables import Table, read_table
from spira.data.validate import (
    AUDIO_EXTENSIONS,
    QUARANTINE_REASONS,
    FileCheck,
    FileResult,
    FileTask,
    check_and_prepare_file,
    resolve_inside,
)

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.csv"
NOISE_MANIFEST_FILE = "noise_manifest.csv"
SUMMARY_FILE = "summary.json"
QUARANTINE_FILE = "quarantine.csv"
QUARANTINE_SUMMARY_FILE = "quarantine_summary.json"

DATASET, NOISE = "dataset", "noise"
# A data.manifests key naming no split: the rows carry their own split column, or none.
ANY_SPLIT = "all"
OPTIONAL_COLUMNS = ("speaker", "sex", "age", "severity", "source", "split")
MISSING_VALUES = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
SEX_VALUES = {
    "F": frozenset({"f", "female", "feminino", "fem", "mulher", "woman", "w"}),
    "M": frozenset({"m", "male", "masculino", "masc", "homem", "man"}),
}
MANIFEST_COLUMNS = [
    "file_id", "path", "label", "speaker_id", "split", "n_samples", "duration_seconds",
    "source_sample_rate", "source_channels", "sex", "age", "severity", "source_id",
]  # fmt: skip
REPORT_COLUMNS = ["set", "manifest", "line", "path", "action", "reason", "message"]

# Hashed ids are hex strings that can look like numbers: always read them as text.
ID_DTYPES = {"file_id": str, "speaker_id": str, "noise_id": str, "source_id": str}


class PrepareError(RuntimeError):
    """The data cannot be prepared as configured; the message says why and what to change."""


def read_prepared_manifest(prepared_dir: Path) -> pd.DataFrame:
    return pd.read_csv(prepared_dir / MANIFEST_FILE, dtype=ID_DTYPES)


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


@dataclass
class PreparedDataset:
    manifest: pd.DataFrame
    noise: pd.DataFrame
    report: dict


# --- reading the rows ------------------------------------------------------------


def normalise_token(value: object) -> str:
    """Lower-case text; integral numbers as integers, so 1, 1.0 and "1" agree."""
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else text


def label_lookup(labels: DictConfig) -> dict[str, int]:
    lookup = {normalise_token(value): 1 for value in labels.patient}
    overlap = {normalise_token(value) for value in labels.control} & set(lookup)
    if overlap:
        raise PrepareError(f"data.labels: {sorted(overlap)} listed as both patient and control")
    return lookup | {normalise_token(value): 0 for value in labels.control}


def split_lookup(names: DictConfig) -> dict[str, str]:
    return {normalise_token(value): split for split in SPLITS for value in names[split]}


def parse_number(text: str) -> float:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return math.nan


def parse_sex(text: str) -> str:
    token = text.strip().lower()
    return next((code for code, values in SEX_VALUES.items() if token in values), "")


def column_names(value: object) -> str | list[str] | None:
    """A data.columns entry: one name, a list of candidate names, or null."""
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


def read_manifest_table(root: Path, key: str, name: str, columns: DictConfig) -> tuple[Table, str, str, dict[str, str | None]]:
    """The table, its file and label columns, and which optional columns it has."""
    path = root / name
    if not path.is_file():
        raise PrepareError(f"{path}: manifest not found (data.manifests.{key}); is data.root right?")
    table = read_table(path)
    file_column, label_column = table.column(column_names(columns.file)), table.column(column_names(columns.label))
    for role, found in (("file", file_column), ("label", label_column)):
        if found is None:
            raise PrepareError(
                f"{path}: no {role} column (data.columns.{role} = {column_names(columns[role])}); its header is {list(table.header)}"
            )
    optional = {role: table.column(column_names(columns.get(role))) for role in OPTIONAL_COLUMNS}
    return table, file_column, label_column, optional


def read_dataset_rows(data: DictConfig, salt: str) -> tuple[list[Entry], list[dict], bool]:
    """Entries for every row of every manifest, with row-level problems already quarantined.

    Returns the entries, what was detected about each manifest (encoding,
    delimiter) and whether the dataset gives speaker ids.
    """
    root = Path(data.root)
    labels, splits = label_lookup(data.labels), split_lookup(data.split.names)
    strategy = str(data.split.strategy)
    entries: list[Entry] = []
    manifests, speaker_ids_given = [], True
    for key, name in data.manifests.items():
        key = str(key)
        if key != ANY_SPLIT and key not in SPLITS:
            raise PrepareError(f"data.manifests.{key}: keys are {list(SPLITS)} or '{ANY_SPLIT}'")
        table, file_column, label_column, optional = read_manifest_table(root, key, str(name), data.columns)
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


def read_noise_rows(data: DictConfig, first_order: int) -> tuple[list[Entry], dict]:
    """The ward-noise set: the files `noise_manifest` lists, or every audio file under noise_root."""
    noise_root, root = Path(data.noise_root), Path(data.root)
    if not noise_root.is_dir():
        raise PrepareError(f"{noise_root}: data.noise_root is not a folder")
    listed = data.get("noise_manifest")
    if listed and (noise_root / listed).is_file():
        table = read_table(noise_root / listed)
        column = table.column(column_names(data.noise_columns))
        if column is None:
            raise PrepareError(f"{noise_root / listed}: no column among data.noise_columns {list(data.noise_columns)}; header {list(table.header)}")
        position = table.header.index(column)
        entries = [
            Entry(NOISE, str(listed), row.line, first_order + number, raw_path=row.fields[position] if position < len(row.fields) else "")
            for number, row in enumerate(table.rows)
        ]
        for entry in entries:
            if not entry.raw_path:
                entry.quarantine("malformed_row", f"{listed} line {entry.line}: no file path")
        return entries, {"name": str(listed), "rows": len(table.rows), "encoding": table.encoding, "delimiter": table.delimiter}
    if noise_root.resolve() == root.resolve():
        log.warning("no ward-noise set: %s has no %s; pass data.noise_root=<noise folder> (or use augment=none)", noise_root, listed)
        return [], {"name": None, "rows": 0}
    files = sorted(p.relative_to(noise_root).as_posix() for p in noise_root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    log.info("ward-noise set: %d audio files found under data.noise_root (no %s there)", len(files), listed)
    scan = "(folder scan)"
    return [Entry(NOISE, scan, 0, first_order + number, raw_path=path) for number, path in enumerate(files)], {"name": scan, "rows": len(files)}


# --- row-level checks ------------------------------------------------------------


def check_paths(entries: list[Entry], root: Path, salt: str, hashed_report_paths: bool) -> None:
    for entry in entries:
        if not entry.accepted and not entry.raw_path:
            continue
        shown, escape = resolve_inside(root, entry.raw_path)
        entry.relative = shown if escape is None else ""
        entry.file_id = salted_id(shown, salt)
        entry.shown_path = entry.file_id if hashed_report_paths else shown
        if entry.accepted and escape is not None:
            entry.quarantine("path_outside_root", f"{entry.shown_path}: {escape}")


def drop_duplicate_rows(entries: list[Entry], given_splits: bool) -> None:
    """The same file listed twice: keep the first, unless the copies disagree, then none."""
    groups: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.accepted:
            groups[(entry.set, entry.relative)].append(entry)
    for copies in groups.values():
        if len(copies) < 2:
            continue
        first = copies[0]
        if len({(e.label, e.speaker_id, e.split if given_splits else "") for e in copies}) == 1:
            for entry in copies[1:]:
                entry.quarantine("duplicate_row", f"{entry.shown_path}: listed again (kept {first.manifest} line {first.line})")
        else:
            places = ", ".join(f"{e.manifest} line {e.line}" for e in copies)
            for entry in copies:
                entry.quarantine("duplicate_row", f"{entry.shown_path}: listed {len(copies)} times with different labels, speakers or splits ({places}); all dropped")


def drop_conflicting_speakers(entries: list[Entry]) -> None:
    by_speaker: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.accepted and entry.set == DATASET and entry.speaker_id:
            by_speaker[entry.speaker_id].append(entry)
    for speaker, files in by_speaker.items():
        if len({e.label for e in files}) > 1:
            patients = sum(e.label == 1 for e in files)
            for entry in files:
                entry.quarantine(
                    "conflicting_speaker_label",
                    f"speaker {speaker} has {patients} patient and {len(files) - patients} control files; all dropped",
                )


# --- decoding in parallel ---------------------------------------------------------


def file_check(data: DictConfig) -> FileCheck:
    validation = data.validation
    return FileCheck(
        target_rate=int(data.sample_rate),
        min_seconds=float(validation.min_seconds),
        silence_peak=float(validation.silence_peak),
        clip_level=float(validation.clip_level),
        max_clipped_fraction=float(validation.max_clipped_fraction),
        min_sample_rate=int(validation.min_sample_rate),
        max_sample_rate=int(validation.max_sample_rate),
        block_frames=int(data.decode_block_frames),
    )


def _single_threaded_worker() -> None:
    # One torch thread per worker: the workers are the parallelism, and results
    # must not depend on how many threads a convolution happened to use.
    torch.set_num_threads(1)


def run_file_checks(tasks: list[FileTask], check: FileCheck, num_workers: int) -> list[FileResult]:
    """check_and_prepare_file on every task, in task order, with a progress bar on stderr."""
    results: list[FileResult] = []
    progress = tqdm(total=len(tasks), desc="prepare", unit="file", file=sys.stderr, mininterval=1.0)
    if num_workers <= 0 or len(tasks) < MIN_FILES_FOR_WORKERS:
        threads = torch.get_num_threads()
        _single_threaded_worker()
        try:
            for task in tasks:
                results.append(check_and_prepare_file(task, check))
                progress.update()
        finally:
            torch.set_num_threads(threads)
    else:
        # spawn, not fork: the parent may already hold torch/OpenMP threads, which fork does not copy safely.
        context = multiprocessing.get_context("spawn")
        chunk = max(1, min(32, len(tasks) // (num_workers * 8)))
        try:
            with ProcessPoolExecutor(num_workers, mp_context=context, initializer=_single_threaded_worker) as pool:
                for result in pool.map(partial(check_and_prepare_file, check=check), tasks, chunksize=chunk):
                    results.append(result)
                    progress.update()
        except BrokenProcessPool as error:
            at = tasks[len(results)].shown_path if len(results) < len(tasks) else "the last files"
            raise PrepareError(
                f"a decoding worker died near {at} (killed for memory, or the decoder crashed); "
                "rerun with data.num_workers=0 to find the file"
            ) from error
    progress.close()
    return results


def decode_entries(entries: list[Entry], data: DictConfig, out_dir: Path) -> None:
    roots = {DATASET: Path(data.root), NOISE: Path(data.noise_root)}
    folders = {DATASET: "audio", NOISE: "noise"}
    pending = [e for e in entries if e.accepted]
    tasks = [
        FileTask(str(roots[e.set] / e.relative), str(out_dir / folders[e.set] / f"{e.file_id}.wav"), e.shown_path)
        for e in pending
    ]
    check = file_check(data)
    for entry, result in zip(pending, run_file_checks(tasks, check, int(data.num_workers))):
        entry.result = result
        if result.reason is not None:
            entry.quarantine(result.reason, result.message)
        elif result.clipped_fraction > check.max_clipped_fraction:
            entry.warnings.append(("clipping", f"{entry.shown_path}: {result.clipped_fraction:.2%} of samples at full scale"))


# --- duplicates, leakage, splits ----------------------------------------------------


def split_rank(split: str) -> int:
    return SPLITS.index(split) if split in SPLITS else len(SPLITS)


def drop_duplicate_content(entries: list[Entry], given_splits: bool) -> None:
    """Same decoded audio under two names: keep the first copy; across given splits it is a leak."""
    groups: dict[tuple[str, str], list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.accepted:
            groups[(entry.set, entry.result.content_hash)].append(entry)
    for copies in groups.values():
        if len(copies) < 2:
            continue
        copies.sort(key=lambda e: (split_rank(e.split) if given_splits else 0, e.order))
        first = copies[0]
        for entry in copies[1:]:
            if given_splits and entry.split != first.split:
                entry.quarantine("content_leak", f"{entry.shown_path} ({entry.split}): same audio as {first.shown_path} ({first.split})")
            else:
                entry.quarantine("duplicate_content", f"{entry.shown_path}: same audio as {first.shown_path}")


def drop_speaker_leaks(entries: list[Entry]) -> None:
    """A speaker in two given splits stays in the first of train, val, test."""
    by_speaker: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.accepted and entry.set == DATASET and entry.speaker_id:
            by_speaker[entry.speaker_id].append(entry)
    for speaker, files in by_speaker.items():
        splits = sorted({e.split for e in files}, key=split_rank)
        if len(splits) > 1:
            for entry in files:
                if entry.split != splits[0]:
                    entry.quarantine("speaker_leak", f"speaker {speaker} has files in {', '.join(splits)}; this one ({entry.split}) dropped")


def assign_speaker_splits(entries: list[Entry], data: DictConfig) -> None:
    accepted = [e for e in entries if e.accepted and e.set == DATASET]
    if not accepted:
        return
    table = pd.DataFrame({"speaker_id": [e.speaker_id for e in accepted], "label": [e.label for e in accepted]})
    for entry, split in zip(accepted, assign_splits(table, data.split.fractions, int(data.split.seed))):
        entry.split = split


# --- outputs ------------------------------------------------------------------------


def manifest_frame(entries: list[Entry], sample_rate: int) -> pd.DataFrame:
    records = [
        {
            "file_id": e.file_id,
            "path": f"audio/{e.file_id}.wav",
            "label": e.label,
            "speaker_id": e.speaker_id,
            "split": e.split,
            "n_samples": e.result.n_samples,
            "duration_seconds": round(e.result.n_samples / sample_rate, 4),
            "source_sample_rate": e.result.source_rate,
            "source_channels": e.result.channels,
            "sex": e.sex,
            "age": e.age,
            "severity": e.severity,
            "source_id": e.source_id,
        }
        for e in entries
        if e.accepted and e.set == DATASET
    ]
    return pd.DataFrame.from_records(records, columns=MANIFEST_COLUMNS).sort_values("file_id", ignore_index=True)


def noise_frame(entries: list[Entry]) -> pd.DataFrame:
    records = [
        {"noise_id": e.file_id, "path": f"noise/{e.file_id}.wav", "n_samples": e.result.n_samples}
        for e in entries
        if e.accepted and e.set == NOISE
    ]
    return pd.DataFrame.from_records(records, columns=["noise_id", "path", "n_samples"]).sort_values("noise_id", ignore_index=True)


def report_frame(entries: list[Entry]) -> pd.DataFrame:
    records = []
    for e in entries:
        base = {"set": e.set, "manifest": e.manifest, "line": e.line, "path": e.shown_path}
        if not e.accepted:
            records.append(base | {"action": "quarantined", "reason": e.reason, "message": e.message})
        else:
            records += [base | {"action": "warning", "reason": reason, "message": message} for reason, message in e.warnings]
    frame = pd.DataFrame.from_records(records, columns=REPORT_COLUMNS)
    return frame.sort_values(["set", "manifest", "line", "action", "reason", "path"], ignore_index=True)


def set_counts(entries: list[Entry], name: str) -> dict:
    rows = [e for e in entries if e.set == name]
    quarantined = [e for e in rows if not e.accepted]
    return {
        "rows_in": len(rows),
        "accepted": len(rows) - len(quarantined),
        "quarantined": len(quarantined),
        "quarantined_fraction": round(len(quarantined) / len(rows), 4) if rows else 0.0,
        "by_reason": dict(sorted(Counter(e.reason for e in quarantined).items())),
        "warnings": dict(sorted(Counter(reason for e in rows if e.accepted for reason, _ in e.warnings).items())),
    }


def split_summary(manifest: pd.DataFrame) -> dict:
    """Files, speakers and class balance per split (no identifiers)."""
    summary = {}
    for split in SPLITS:
        part = manifest[manifest["split"] == split]
        summary[split] = {
            "files": int(len(part)),
            "speakers": int(part["speaker_id"].nunique()),
            "patient_files": int((part["label"] == 1).sum()),
            "control_files": int((part["label"] == 0).sum()),
        }
    return summary


def check_failures(report: dict, manifest: pd.DataFrame, data: DictConfig) -> list[str]:
    """Why this run must fail: leaks under on_leak=fail, too much quarantined, a split missing a class."""
    failures = []
    counts = report[DATASET]
    leaks = {reason: counts["by_reason"].get(reason, 0) for reason in ("content_leak", "speaker_leak")}
    if str(data.split.on_leak) == "fail" and any(leaks.values()):
        failures.append(
            f"leakage between the given splits: {leaks['content_leak']} file(s) with audio identical to a file in another split, "
            f"{leaks['speaker_leak']} file(s) of speakers present in an earlier split (listed in the quarantine report as "
            "content_leak / speaker_leak); fix the dataset's split or set data.split.on_leak=drop"
        )
    limit = float(data.max_quarantine_fraction)
    if counts["quarantined_fraction"] > limit:
        top = ", ".join(f"{reason} {n}" for reason, n in Counter(counts["by_reason"]).most_common())
        failures.append(
            f"{counts['quarantined']} of {counts['rows_in']} rows quarantined ({counts['quarantined_fraction']:.1%}), "
            f"more than data.max_quarantine_fraction={limit:g}; by reason: {top}"
        )
    for split in SPLITS:
        present = set(manifest.loc[manifest["split"] == split, "label"])
        missing = [name for label, name in ((1, "patient"), (0, "control")) if label not in present]
        if missing:
            failures.append(f"split '{split}' has no {' and no '.join(missing)} files after validation; every split needs both classes")
    return failures


def format_report_table(report: dict) -> str:
    """The summary printed at the end of prepare: rows in, accepted, quarantined by reason."""
    lines = []
    for name in (DATASET, NOISE):
        counts = report[name]
        lines.append(f"{name:<8} rows in {counts['rows_in']:>7}   accepted {counts['accepted']:>7}   quarantined {counts['quarantined']:>7}")
        lines += [f"    quarantined  {reason:<28}{n:>7}" for reason, n in counts["by_reason"].items()]
        lines += [f"    warning      {reason:<28}{n:>7}" for reason, n in counts["warnings"].items()]
    if not report["speaker_ids_given"]:
        lines.append("WARNING: no speaker ids in the dataset: every file counts as its own speaker, so splits cannot keep a speaker's files together")
    return "\n".join(lines)


def prepare_dataset(data: DictConfig) -> PreparedDataset:
    """Validate and decode every listed file, write the prepared data and the quarantine report.

    Raises PrepareError (after writing everything) when the run must fail.
    """
    root, out_dir, report_dir = Path(data.root), Path(data.out_dir), Path(data.report_dir)
    if not root.is_dir():
        raise PrepareError(f"{root}: data.root is not a folder")
    for folder in (out_dir, report_dir):
        if folder.exists():
            shutil.rmtree(folder)
    for folder in (out_dir / "audio", out_dir / "noise", report_dir):
        folder.mkdir(parents=True)
    salt, salt_source = resolve_salt(data)
    log.info("hashing ids with the salt from %s", salt_source)
    given_splits = str(data.split.strategy) == "given"
    if str(data.split.strategy) not in ("given", "speaker"):
        raise PrepareError(f"data.split.strategy must be 'given' or 'speaker', not {data.split.strategy!r}")
    if str(data.split.on_leak) not in ("fail", "drop"):
        raise PrepareError(f"data.split.on_leak must be 'fail' or 'drop', not {data.split.on_leak!r}")

    entries, manifests, speaker_ids_given = read_dataset_rows(data, salt)
    noise_entries, noise_manifest = read_noise_rows(data, len(entries))
    hashed_paths = str(data.report_paths) == "hashed"
    check_paths(entries, root, salt, hashed_paths)
    check_paths(noise_entries, Path(data.noise_root), salt, hashed_paths)
    entries += noise_entries
    if not speaker_ids_given:
        log.warning(
            "NO SPEAKER IDS: %s has no speaker column (data.columns.speaker). Every file counts as its own speaker, "
            "so one person's recordings can land in train and test.",
            ", ".join(m["name"] for m in manifests),
        )
    for entry in entries:
        if entry.set == DATASET and entry.accepted and not entry.speaker_id:
            entry.speaker_id = salted_id(f"file\x00{entry.relative}", salt)
            if speaker_ids_given:
                entry.warnings.append(("missing_speaker_id", f"{entry.shown_path}: no speaker id, counted as its own speaker"))
    drop_duplicate_rows(entries, given_splits)
    drop_conflicting_speakers(entries)
    decode_entries(entries, data, out_dir)
    drop_duplicate_content(entries, given_splits)
    if given_splits:
        drop_speaker_leaks(entries)
    else:
        assign_speaker_splits(entries, data)
    for entry in entries:
        if not entry.accepted and entry.result is not None and entry.result.reason is None:
            # Decoded and written before a later check rejected it.
            (out_dir / ("audio" if entry.set == DATASET else "noise") / f"{entry.file_id}.wav").unlink()

    sample_rate = int(data.sample_rate)
    manifest, noise = manifest_frame(entries, sample_rate), noise_frame(entries)
    manifest.to_csv(out_dir / MANIFEST_FILE, index=False)
    noise.to_csv(out_dir / NOISE_MANIFEST_FILE, index=False)
    summary = split_summary(manifest) | {"noise_files": len(noise)}
    (out_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

    report = {
        DATASET: set_counts(entries, DATASET),
        NOISE: set_counts(entries, NOISE),
        "manifests": manifests,
        "noise_manifest": noise_manifest,
        "speaker_ids_given": speaker_ids_given,
        "split_strategy": str(data.split.strategy),
        "on_leak": str(data.split.on_leak),
        "max_quarantine_fraction": float(data.max_quarantine_fraction),
    }
    failures = check_failures(report, manifest, data)
    report |= {"passed": not failures, "failures": failures}
    report_frame(entries).to_csv(report_dir / QUARANTINE_FILE, index=False)
    (report_dir / QUARANTINE_SUMMARY_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    log.info("prepare summary\n%s", format_report_table(report))
    if failures:
        raise PrepareError("prepare failed:\n- " + "\n- ".join(failures) + f"\nDetails: {report_dir / QUARANTINE_FILE}")
    return PreparedDataset(manifest=manifest, noise=noise, report=report)
