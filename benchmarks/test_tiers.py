"""Time the two test tiers on a fresh clone of HEAD and write benchmarks/results/test_tiers.json.

    python benchmarks/test_tiers.py            # clone HEAD, run both tiers with this interpreter
    python benchmarks/test_tiers.py --fast-only

The clone is made with `git clone` (committed files only, nothing generated), and each tier
runs the command its make target runs (`make test-fast`, `make test`), with the running
interpreter's environment standing in for the clone's `.venv` (PYTHONPATH puts the clone's
`src/` first), so the figure is the tests' time without the locked install's download.
docs/testing.md quotes the result (`make docs`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import default_output, machine

REPO = Path(__file__).resolve().parents[1]
FAST = ["-m", "pytest", "--numprocesses", "2", "--dist", "worksteal", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
FULL = ["-m", "pytest", "--numprocesses", "2", "--dist", "worksteal", "-q", "-p", "no:cacheprovider"]


def run_tier(clone: Path, arguments: list[str]) -> tuple[float, int]:
    """Wall seconds and the number of passed tests; a failing tier stops the benchmark."""
    env = os.environ | {"PYTHONPATH": str(clone / "src"), "WANDB_MODE": "offline",
                        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}  # fmt: skip
    start = time.perf_counter()
    result = subprocess.run([sys.executable, *arguments], cwd=clone, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr
    if result.returncode != 0:
        failures = [line for line in result.stdout.splitlines() if line.startswith(("FAILED ", "ERROR "))]
        sys.exit("\n".join([*failures, f"error: the tier failed ({result.returncode}): {tail}"]))
    passed = re.search(r"(\d+) passed", tail)
    if passed is None:
        sys.exit(f"error: no pass count in pytest's last line: {tail}")
    return seconds, int(passed.group(1))


def machine_line() -> str:
    record = machine()
    return f"{record['cpu']}, {record['cpus']} cores, {record['accelerator']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast-only", action="store_true", help="time make test-fast only")
    parser.add_argument("--output", type=Path, default=default_output("test_tiers"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clone = Path(folder) / "clone"
        subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()
        fast_seconds, tests_fast = run_tier(clone, FAST)
        print(f"make test-fast: {tests_fast} passed in {fast_seconds:.1f} s")
        results = {"commit": commit, "machine": machine_line(), "fast_seconds": round(fast_seconds, 1), "tests_fast": tests_fast}
        if not args.fast_only:
            full_seconds, tests_full = run_tier(clone, FULL)
            print(f"make test: {tests_full} passed in {full_seconds:.1f} s")
            results |= {"full_seconds": round(full_seconds, 1), "tests_full": tests_full}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
