"""The rules over all entries: paths inside the root, duplicates, speakers, leaks, splits.

Each rule quarantines the entries it rejects, with a reason and a message,
and leaves the others as they are. drop_duplicate_content compares the decoded
audio, so it runs after decoding; prepare_dataset sets the order.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pandas as pd
from spira.data.privacy import salted_id
from spira.data.rows import DATASET, Entry
from spira.data.settings import SplitSettings
from spira.data.splits import SPLITS, assign_splits
from spira.data.validate import resolve_inside


def check_paths(entries: list[Entry], root: Path, salt: str, hashed_report_paths: bool) -> None:
    """Each entry's path relative to `root`, its hashed file id and the path reports show."""
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


def fill_missing_speaker_ids(entries: list[Entry], salt: str, speaker_ids_given: bool) -> None:
    """A dataset file without a speaker id counts as its own speaker (a warning when others have ids)."""
    for entry in entries:
        if entry.set == DATASET and entry.accepted and not entry.speaker_id:
            entry.speaker_id = salted_id(f"file\x00{entry.relative}", salt)
            if speaker_ids_given:
                entry.warnings.append(("missing_speaker_id", f"{entry.shown_path}: no speaker id, counted as its own speaker"))


def files_by_speaker(entries: list[Entry]) -> dict[str, list[Entry]]:
    """The accepted dataset entries with a speaker id, per speaker, in reading order."""
    by_speaker: dict[str, list[Entry]] = defaultdict(list)
    for entry in entries:
        if entry.accepted and entry.set == DATASET and entry.speaker_id:
            by_speaker[entry.speaker_id].append(entry)
    return by_speaker


def drop_conflicting_speakers(entries: list[Entry]) -> None:
    for speaker, files in files_by_speaker(entries).items():
        if len({e.label for e in files}) > 1:
            patients = sum(e.label == 1 for e in files)
            for entry in files:
                entry.quarantine(
                    "conflicting_speaker_label",
                    f"speaker {speaker} has {patients} patient and {len(files) - patients} control files; all dropped",
                )


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
    for speaker, files in files_by_speaker(entries).items():
        splits = sorted({e.split for e in files}, key=split_rank)
        if len(splits) > 1:
            for entry in files:
                if entry.split != splits[0]:
                    entry.quarantine("speaker_leak", f"speaker {speaker} has files in {', '.join(splits)}; this one ({entry.split}) dropped")


def assign_speaker_splits(entries: list[Entry], split: SplitSettings) -> dict[str, dict]:
    """Each accepted dataset entry's split from its salted speaker id; returns the splits' class balance."""
    accepted = [e for e in entries if e.accepted and e.set == DATASET]
    if not accepted:
        return {}
    table = pd.DataFrame({"speaker_id": [e.speaker_id for e in accepted], "label": [e.label for e in accepted]})
    splits, balance = assign_splits(table, split.fractions, split.seed)
    for entry, split in zip(accepted, splits):
        entry.split = split
    return balance
