"""The model zoo on the demo cohort: every model family through the whole pipeline, side by side.

    python benchmarks/compare_models.py --run      # dvc exp run -f for each entry (about 25 minutes on 2 cores), then the table
    python benchmarks/compare_models.py            # the table from experiments already run (dvc exp show)

Entries (each a `dvc exp run -f` of HEAD with `-S experiment=<entry>`, conf/experiment/):
  spira_conv_v2     SPIRA's CNN on MFCC (the committed default)
  mfcc_transformer  the MFCC-gram Transformer, CPU-small
  cnn6_small        PANN CNN6 on log-mel at a quarter of PANN's widths
  egemaps_logreg    logistic regression on openSMILE eGeMAPSv02 functionals

`-f` reruns every stage, so each entry's train stage runs here and its time is measured, not
restored from DVC's run cache. Per entry: parameters, the validation AUROC of the selected
checkpoint, the clean and noisy test AUROC with their 95% speaker-bootstrap intervals, the mean
seconds of a training epoch (the train stage's own epoch lines: training and the epoch's
validation) and the train stage's wall seconds (the logistic regression's whole fit, its choice of
C included). The model a user would pick is the one with the best validation AUROC, marked in the
table; the test columns are reported, never selected on. `cnn6` (PANN's widths) and
`mfcc_transformer_large` are for a GPU and are not run here. The lines go to
benchmarks/results/compare_models.json for `make docs`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from head_experiments import ROOT, experiments, interval, restore_head_record
from results_file import default_output, recorded
from spira.config import compose_config

ENTRIES = {
    "spira_conv_v2": "baseline",
    "mfcc_transformer": "mfcc_transformer",
    "cnn6_small": "cnn6_small",
    "egemaps_logreg": "egemaps_logreg",
}
TIMINGS = ROOT / "benchmarks" / "results" / "compare_models_timings.json"
EPOCH_LINE = re.compile(r"^epoch \d+/\d+: .* \((\d+(?:\.\d+)?) s\)$")
STAGE_LINE = re.compile(r"^Running stage '([a-z_]+)':")


def run_entry(name: str, experiment: str) -> dict[str, float | None]:
    """`dvc exp run -f` of one entry, its output passed through; returns the train stage's timings
    read off that output as it arrives (epoch lines, and when the train stage began and ended)."""
    subprocess.run(["dvc", "exp", "remove", f"zoo-{name}"], capture_output=True, cwd=ROOT)
    command = ["dvc", "exp", "run", "-f", "-n", f"zoo-{name}", "-S", f"experiment={experiment}"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    epochs, stage, train_start, train_end = [], None, None, None
    for line in process.stdout:
        sys.stderr.write(line)
        text = line.strip()
        if match := STAGE_LINE.match(text):
            now = time.perf_counter()
            if stage == "train":
                train_end = now
            stage = match.group(1)
            if stage == "train":
                train_start = now
        elif stage == "train" and (match := EPOCH_LINE.match(text)):
            epochs.append(float(match.group(1)))
    if process.wait() != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode})")
    if train_start is None or train_end is None:
        raise SystemExit(f"zoo-{name}: the train stage did not run (its output has no 'Running stage' lines around it)")
    return {"seconds_per_epoch": round(sum(epochs) / len(epochs), 1) if epochs else None, "train_stage_seconds": round(train_end - train_start, 1)}


def table(found: dict[str, dict], timings: dict[str, dict]) -> list[str]:
    rows = {}
    for name in ENTRIES:
        metrics = found.get(f"zoo-{name}")
        if metrics is None or name not in timings:
            raise SystemExit(f"no experiment zoo-{name} of HEAD (or no timing of it): run `python benchmarks/compare_models.py --run`")
        rows[name] = metrics
    chosen = max(rows, key=lambda name: rows[name]["metrics/train.json"]["val/file_auroc"])
    lines = [
        "| model | features | parameters | val AUROC | clean test AUROC (95% CI) | noisy test AUROC (95% CI) | s / epoch | train stage s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, metrics in rows.items():
        train, test, timing = metrics["metrics/train.json"], metrics["metrics/test.json"], timings[name]
        mark = " (chosen on validation)" if name == chosen else ""
        per_epoch = "—" if timing["seconds_per_epoch"] is None else f"{timing['seconds_per_epoch']:.1f}"
        features = compose_config([f"experiment={ENTRIES[name]}"]).features.name
        lines.append(
            f"| `{name}`{mark} | `{features}` | {train['parameters']:,} | {train['val/file_auroc']:.3f} | "
            f"{interval(test['test_clean'], 'auroc')} | {interval(test['test_noisy'], 'auroc')} | {per_epoch} | {timing['train_stage_seconds']:.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="run each entry with `dvc exp run -f` first")
    parser.add_argument("--output", type=Path, default=default_output("compare_models"), help="results file for `make docs`")
    args = parser.parse_args()
    if args.run:
        timings = {name: run_entry(name, experiment) for name, experiment in ENTRIES.items()}
        TIMINGS.write_text(json.dumps(timings, indent=1) + "\n")
        restore_head_record()
    if not TIMINGS.is_file():
        raise SystemExit(f"{TIMINGS}: no timings; run `python benchmarks/compare_models.py --run`")
    with recorded("compare_models", args.output):
        print("\n".join(table(experiments(), json.loads(TIMINGS.read_text()))))


if __name__ == "__main__":
    main()
