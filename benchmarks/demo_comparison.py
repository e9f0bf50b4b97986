"""The demo benchmark: the default model beside two that should do worse, as DVC experiments.

    python benchmarks/demo_comparison.py --run     # queue-free: dvc exp run for each entry, then the table
    python benchmarks/demo_comparison.py           # the table from experiments already run (dvc exp show)
    dvc exp show --only-changed                    # the same runs side by side

Entries (each a `dvc exp run` of HEAD with these overrides):
  default       the committed config
  augment-none  no noise in training (SPIRA's failure mode): should be clearly worse on the noisy test
  one-epoch     trainer.max_epochs=1, a deliberately weak model: should be clearly worse on the clean test

It prints, per entry, the validation AUROC of the selected checkpoint (what any choice
may read) and the clean and noisy test AUROC with their 95% speaker intervals and the
gate's decision (read only to report), and keeps the lines in
benchmarks/results/demo_comparison.json for `make docs`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from head_experiments import ROOT, experiments, interval, restore_head_record
from results_file import default_output, recorded

ENTRIES = {
    "default": [],
    "augment-none": ["augment=none"],
    "one-epoch": ["trainer.max_epochs=1"],
}


def run_entry(name: str, overrides: list[str]) -> None:
    """One entry as an experiment of HEAD (a previous one of that name replaced; DVC's run cache
    restores the stages whose inputs it has seen, so `default` costs nothing after `make repro`)."""
    subprocess.run(["dvc", "exp", "remove", f"demo-{name}"], capture_output=True, cwd=ROOT)
    command = ["dvc", "exp", "run", "-n", f"demo-{name}", *(arg for override in overrides for arg in ("-S", override))]
    subprocess.run(command, check=True, stdout=sys.stderr, cwd=ROOT)


def table(found: dict[str, dict]) -> list[str]:
    lines = ["| run | overrides | val AUROC | clean test AUROC (95% CI) | noisy test AUROC (95% CI) | gate |", "|---|---|---|---|---|---|"]
    for name, overrides in ENTRIES.items():
        metrics = found.get(f"demo-{name}")
        if metrics is None:
            raise SystemExit(f"no experiment demo-{name} of HEAD: run `python benchmarks/demo_comparison.py --run`")
        test, train, gate = metrics["metrics/test.json"], metrics["metrics/train.json"], metrics["metrics/gate.json"]
        shown = " ".join(f"`{override}`" for override in overrides) or "none"
        lines.append(f"| {name} | {shown} | {train['val/file_auroc']:.3f} | {interval(test['test_clean'], 'auroc', '-')} | "
                     f"{interval(test['test_noisy'], 'auroc', '-')} | {gate['decision']} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="store_true", help="run each entry with `dvc exp run` first (about 3 minutes each on 2 cores)")
    parser.add_argument("--output", type=Path, default=default_output("demo_comparison"), help="results file for `make docs`")
    args = parser.parse_args()
    if args.run:
        for name, overrides in ENTRIES.items():
            run_entry(name, overrides)
        restore_head_record()
    with recorded("demo_comparison", args.output):
        print("\n".join(table(experiments())))


if __name__ == "__main__":
    main()
