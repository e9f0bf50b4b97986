"""Prepare: manifests -> validated 16 kHz mono peak-normalised audio, speaker-disjoint splits.

Every input row (dataset and ward-noise set alike) ends either in the prepared
manifest or in the quarantine report with a reason; nothing is dropped
silently and no bad file stops the run. The run fails only by the rules in
`check_failures`, after the reports are written, with a message naming the
cause.

This module runs the steps in order; each lives with its concern: `rows`
reads the input manifests into entries, `rules` applies the checks over all
entries (paths, duplicates, speakers, leaks, splits), `validate` checks and
decodes one file, `quarantine` writes the report and decides failure, and
`manifest` is what later stages read.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from spira.data.manifest import (
    AUDIO_FOLDER,
    MANIFEST_COLUMNS,
    NOISE_FOLDER,
    NOISE_MANIFEST_COLUMNS,
    write_noise_manifest,
    write_prepared_manifest,
    write_summary,
)
from spira.data.privacy import resolve_salt
from spira.data.quarantine import QUARANTINE_FILE, check_failures, format_report_table, set_counts, write_quarantine_report
from spira.data.rows import DATASET, NOISE, Entry, PrepareError, read_dataset_rows, read_noise_rows
from spira.data.rules import (
    assign_speaker_splits,
    check_paths,
    drop_conflicting_speakers,
    drop_duplicate_content,
    drop_duplicate_rows,
    drop_speaker_leaks,
    fill_missing_speaker_ids,
)
from spira.data.settings import PrepareSettings
from spira.data.splits import MIN_NOISE_RECORDINGS, SPLITS, split_noise_recordings
from spira.data.validate import FileCheck, FileResult, FileTask, check_and_prepare_file
from spira.parallel import ordered_map
from spira.safety import check_output_path, staged_folder

log = logging.getLogger(__name__)

# Where each set's prepared files go inside the prepared data folder.
OUTPUT_FOLDERS = {DATASET: AUDIO_FOLDER, NOISE: NOISE_FOLDER}


@dataclass
class PreparedDataset:
    manifest: pd.DataFrame
    noise: pd.DataFrame
    report: dict


def run_file_checks(tasks: list[FileTask], check: FileCheck, num_workers: int) -> list[FileResult]:
    """check_and_prepare_file on every task, in task order, with a progress bar on stderr."""
    results: list[FileResult] = []
    # Closed before any error propagates, so the error is the last line on stderr.
    with tqdm(total=len(tasks), desc="prepare", unit="file", file=sys.stderr, mininterval=1.0) as progress:
        try:
            for result in ordered_map(partial(check_and_prepare_file, check=check), tasks, num_workers):
                results.append(result)
                progress.update()
        except BrokenProcessPool as error:
            at = tasks[len(results)].shown_path if len(results) < len(tasks) else "the last files"
            raise PrepareError(
                f"a decoding worker died near {at} (killed for memory, or the decoder crashed); "
                "rerun with data.num_workers=0 to find the file"
            ) from error
    return results


def decode_entries(entries: list[Entry], settings: PrepareSettings, out_dir: Path) -> None:
    """Check and decode the file of every accepted entry; a file that fails quarantines its entry."""
    roots = {DATASET: settings.root, NOISE: settings.noise_root}
    pending = [e for e in entries if e.accepted]
    tasks = [
        FileTask(str(roots[e.set] / e.relative), str(out_dir / OUTPUT_FOLDERS[e.set] / f"{e.file_id}.wav"), e.shown_path)
        for e in pending
    ]
    check = settings.check
    for entry, result in zip(pending, run_file_checks(tasks, check, settings.num_workers)):
        entry.result = result
        if result.reason is not None:
            entry.quarantine(result.reason, result.message)
        elif result.clipped_fraction > check.max_clipped_fraction:
            entry.warnings.append(("clipping", f"{entry.shown_path}: {result.clipped_fraction:.2%} of samples at full scale"))


def manifest_frame(entries: list[Entry], sample_rate: int) -> pd.DataFrame:
    records = [
        {
            "file_id": e.file_id,
            "path": f"{AUDIO_FOLDER}/{e.file_id}.wav",
            "label": e.label,
            "speaker_id": e.speaker_id,
            "split": e.split,
            "n_samples": e.result.n_samples,
            "duration_seconds": round(e.result.n_samples / sample_rate, 4),
            "source_sample_rate": e.result.source_rate,
            "source_channels": e.result.channels,
            "source_format": e.result.source_format,
            "sex": e.sex,
            "age": e.age,
            "severity": e.severity,
            "source_id": e.source_id,
        }
        for e in entries
        if e.accepted and e.set == DATASET
    ]
    return pd.DataFrame.from_records(records, columns=MANIFEST_COLUMNS).sort_values("file_id", ignore_index=True)


def noise_frame(entries: list[Entry], settings: PrepareSettings) -> pd.DataFrame:
    """The prepared noise recordings and the split of each: as the noise manifest gives it
    (data.noise_split.column), else by a seeded hash of the ids (spira.data.splits)."""
    records = [
        {"noise_id": e.file_id, "path": f"{NOISE_FOLDER}/{e.file_id}.wav", "n_samples": e.result.n_samples, "split": e.split}
        for e in entries
        if e.accepted and e.set == NOISE
    ]
    noise = pd.DataFrame.from_records(records, columns=NOISE_MANIFEST_COLUMNS).sort_values("noise_id", ignore_index=True)
    # Given by the noise manifest's split column (a folder scan has none).
    given = bool((noise["split"] != "").any())
    if not given:
        noise["split"] = split_noise_recordings(noise["noise_id"].tolist(), settings.noise_split.fractions, settings.noise_split.seed)
        if 0 < len(noise) < MIN_NOISE_RECORDINGS:
            log.warning(
                "ONLY %d WARD-NOISE RECORDING(S): too few to split into train/val/test noise (%d needed); training, the noisy "
                "validation set and the noisy test set share them, so the noisy test measures noise the model has heard.",
                len(noise), MIN_NOISE_RECORDINGS,
            )  # fmt: skip
    for split in SPLITS:
        if given and len(noise) and not (noise["split"] == split).any():
            log.warning("NO %s NOISE: data.noise_split.column gives no %s noise recording", split.upper(), split)
    return noise


def prepare_dataset(settings: PrepareSettings, out_dir: Path, report_dir: Path) -> PreparedDataset:
    """Validate and decode every listed file, write the prepared data to `out_dir` and the
    quarantine report to `report_dir`.

    Raises PrepareError (after writing everything) when the run must fail.
    """
    root, out_dir, report_dir = settings.root, Path(out_dir), Path(report_dir)
    if not root.is_dir():
        raise PrepareError(f"{root}: data.root is not a folder")
    salt, salt_source = resolve_salt(settings.salt)
    inputs = {"data.root": settings.root, "data.noise_root": settings.noise_root}
    check_output_path(out_dir, "the prepared data", inputs)
    check_output_path(report_dir, "the quarantine report", inputs)
    log.info("hashing ids with the salt from %s", salt_source)
    # Both folders appear complete when this block ends, or not at all (spira.safety).
    with staged_folder(out_dir, "the prepared data", inputs) as staged_out, staged_folder(report_dir, "the quarantine report", inputs) as staged_report:
        prepared = prepare_into(settings, salt, staged_out, staged_report)
    failures = prepared.report["failures"]
    if failures:
        raise PrepareError("prepare failed:\n- " + "\n- ".join(failures) + f"\nDetails: {report_dir / QUARANTINE_FILE}")
    return prepared


def prepare_into(settings: PrepareSettings, salt: str, out_dir: Path, report_dir: Path) -> PreparedDataset:
    """The work of prepare_dataset, writing into the (staging) folders out_dir and report_dir."""
    root, split = settings.root, settings.split
    for folder in (out_dir / AUDIO_FOLDER, out_dir / NOISE_FOLDER):
        folder.mkdir()
    given_splits = split.strategy == "given"
    if split.strategy not in ("given", "speaker"):
        raise PrepareError(f"data.split.strategy must be 'given' or 'speaker', not {split.strategy!r}")
    if split.on_leak not in ("fail", "drop"):
        raise PrepareError(f"data.split.on_leak must be 'fail' or 'drop', not {split.on_leak!r}")

    entries, manifests, speaker_ids_given = read_dataset_rows(settings, salt)
    noise_entries, noise_manifest = read_noise_rows(settings, len(entries))
    hashed_paths = settings.report_paths == "hashed"
    check_paths(entries, root, salt, hashed_paths)
    check_paths(noise_entries, settings.noise_root, salt, hashed_paths)
    entries += noise_entries
    if not speaker_ids_given:
        log.warning(
            "NO SPEAKER IDS: %s has no speaker column (data.columns.speaker). Every file counts as its own speaker, "
            "so one person's recordings can land in train and test.",
            ", ".join(m["name"] for m in manifests),
        )
    fill_missing_speaker_ids(entries, salt, speaker_ids_given)
    drop_duplicate_rows(entries, given_splits)
    drop_conflicting_speakers(entries)
    decode_entries(entries, settings, out_dir)
    drop_duplicate_content(entries, given_splits)
    split_balance = {}
    if given_splits:
        drop_speaker_leaks(entries)
    else:
        split_balance = assign_speaker_splits(entries, split)
        for name, balance in split_balance.items():
            log.info(
                "split %s: fraction %.2f, share of each class's speakers %s (largest distance %.3f)",
                name, balance["fraction"], balance["share_of_class"], balance["max_distance"],
            )  # fmt: skip
    for entry in entries:
        if not entry.accepted and entry.result is not None and entry.result.reason is None:
            # Decoded and written before a later check rejected it.
            (out_dir / OUTPUT_FOLDERS[entry.set] / f"{entry.file_id}.wav").unlink()

    sample_rate = settings.sample_rate
    manifest, noise = manifest_frame(entries, sample_rate), noise_frame(entries, settings)
    write_prepared_manifest(out_dir, manifest)
    write_noise_manifest(out_dir, noise)
    write_summary(out_dir, manifest, noise)

    report = {
        DATASET: set_counts(entries, DATASET),
        NOISE: set_counts(entries, NOISE),
        "manifests": manifests,
        "noise_manifest": noise_manifest,
        "speaker_ids_given": speaker_ids_given,
        "split_strategy": split.strategy,
        # speaker strategy: per split, the share of each class's speakers and its distance from the fraction.
        "split_balance": split_balance,
        "on_leak": split.on_leak,
        "max_quarantine_fraction": settings.max_quarantine_fraction,
    }
    failures = check_failures(report, manifest, split, settings.max_quarantine_fraction)
    report |= {"passed": not failures, "failures": failures}
    write_quarantine_report(report_dir, entries, report)
    log.info("prepare summary\n%s", format_report_table(report))
    return PreparedDataset(manifest=manifest, noise=noise, report=report)
