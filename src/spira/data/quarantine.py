"""The quarantine report: every rejected row and every warning, the counts, and the failure policy.

quarantine.csv lists one line per quarantined row or warning (`set, manifest,
line, path, action, reason, message`); quarantine_summary.json holds the
counts per set and reason, what was read and whether the run passed.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
from spira.data.rows import DATASET, NOISE, Entry
from spira.data.settings import SplitSettings
from spira.data.splits import SPLITS, seed_with_both_classes_everywhere

QUARANTINE_FILE = "quarantine.csv"
QUARANTINE_SUMMARY_FILE = "quarantine_summary.json"
REPORT_COLUMNS = ["set", "manifest", "line", "path", "action", "reason", "message"]


def report_frame(entries: list[Entry]) -> pd.DataFrame:
    """quarantine.csv: one line per quarantined entry and per warning, sorted by set, manifest and line."""
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
    """Rows in, accepted and quarantined (by reason), and warnings, of one set."""
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


def check_failures(report: dict, manifest: pd.DataFrame, split: SplitSettings, max_quarantine_fraction: float) -> list[str]:
    """Why this run must fail: leaks under on_leak=fail, too much quarantined, a split missing a class."""
    failures = []
    counts = report[DATASET]
    leaks = {reason: counts["by_reason"].get(reason, 0) for reason in ("content_leak", "speaker_leak")}
    if split.on_leak == "fail" and any(leaks.values()):
        failures.append(
            f"leakage between the given splits: {leaks['content_leak']} file(s) with audio identical to a file in another split, "
            f"{leaks['speaker_leak']} file(s) of speakers present in an earlier split (listed in the quarantine report as "
            "content_leak / speaker_leak); fix the dataset's split or set data.split.on_leak=drop"
        )
    limit = max_quarantine_fraction
    if counts["quarantined_fraction"] > limit:
        top = ", ".join(f"{reason} {n}" for reason, n in Counter(counts["by_reason"]).most_common())
        failures.append(
            f"{counts['quarantined']} of {counts['rows_in']} rows quarantined ({counts['quarantined_fraction']:.1%}), "
            f"more than data.max_quarantine_fraction={limit:g}; by reason: {top}"
        )
    for name in SPLITS:
        present = set(manifest.loc[manifest["split"] == name, "label"])
        missing = [role for label, role in ((1, "patient"), (0, "control")) if label not in present]
        if missing:
            failures.append(f"split '{name}' has no {' and no '.join(missing)} files after validation; every split needs both classes")
    if any(f.startswith("split '") for f in failures) and split.strategy == "speaker" and len(manifest):
        failures.append(hash_split_hint(manifest, split))
    return failures


def hash_split_hint(manifest: pd.DataFrame, split: SplitSettings) -> str:
    """What to do when the hash split of a small cohort leaves a split without a class."""
    speaker_labels = manifest.groupby("speaker_id")["label"].first().to_dict()
    seed = seed_with_both_classes_everywhere(speaker_labels, split.fractions, split.seed + 1)
    advice = f"data.split.seed={seed} gives every split both classes" if seed is not None else "no seed gives every split both classes"
    return (
        f"split.strategy=speaker places each of the {len(speaker_labels)} speakers by a hash of its id, so a cohort this small "
        f"can leave a split without a class: add speakers or change the seed once ({advice}; "
        "changing it later moves speakers between splits)"
    )


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


def write_quarantine_report(report_dir: Path, entries: list[Entry], report: dict) -> None:
    report_frame(entries).to_csv(report_dir / QUARANTINE_FILE, index=False)
    (report_dir / QUARANTINE_SUMMARY_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
