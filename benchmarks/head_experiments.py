"""DVC experiments of HEAD, as the comparison benchmarks (demo_comparison, compare_models) read them.

    found = experiments()              # experiment name -> {metrics file -> its figures}
    restore_head_record()              # after `dvc exp run`: HEAD's record and DVC outputs back in the workspace
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def experiments() -> dict[str, dict]:
    """name -> the metrics files of the experiments of HEAD (dvc exp show --json)."""
    shown = json.loads(subprocess.run(["dvc", "exp", "show", "--json"], check=True, capture_output=True, text=True, cwd=ROOT).stdout)
    found = {}
    for commit in shown:
        for experiment in commit.get("experiments") or []:
            revision = experiment["revs"][0]
            if revision.get("name"):
                found[revision["name"]] = {path: entry["data"] for path, entry in revision["data"]["metrics"].items()}
    return found


def restore_head_record() -> None:
    """Each `dvc exp run` leaves its outputs in the workspace: put back HEAD's record and DVC outputs
    (not `dvc exp apply`, which would also put back the code of the experiment's time)."""
    subprocess.run(["git", "checkout", "HEAD", "--", "params.yaml", "dvc.lock", "metrics", "reports", "eval"], check=True, cwd=ROOT)
    subprocess.run(["dvc", "checkout", "--quiet"], check=True, stdout=sys.stderr, cwd=ROOT)


def interval(figures: dict, metric: str, dash: str = "–") -> str:
    """'0.847 (0.724–0.953)': a metric with its confidence interval from metrics/test.json's `_ci_low`/`_ci_high`."""
    return f"{figures[metric]:.3f} ({figures[f'{metric}_ci_low']:.3f}{dash}{figures[f'{metric}_ci_high']:.3f})"
