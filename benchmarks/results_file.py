"""A benchmark's printed figures, also kept as `benchmarks/results/<name>.json` for `make docs`.

    with recorded("bench_featurize", args.output):
        ...print the figures as before...

Everything printed inside the block goes to standard output as before and, when the
block ends without an error, into the results file with the command line and a
record of the machine (no host name). `scripts/make_docs.py` quotes that file in the docs.
"""

from __future__ import annotations

import io
import json
import os
import platform
import sys
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def default_output(name: str) -> Path:
    return RESULTS / f"{name}.json"


def machine() -> dict:
    """spira.reproducibility's record where torch is installed; the torch-free part elsewhere (the serving install)."""
    try:
        from spira.reproducibility import machine_record  # imports torch
    except ImportError:
        return {"cpu": platform.processor() or platform.machine(), "architecture": platform.machine(), "system": platform.system(),
                "python": platform.python_version(), "cpus": os.cpu_count(), "accelerator": "cpu"}
    return machine_record() | {"cpus": os.cpu_count()}

class _Tee(io.TextIOBase):
    def __init__(self, stream) -> None:
        self.stream, self.captured = stream, io.StringIO()

    def write(self, text: str) -> int:
        self.captured.write(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextmanager
def recorded(name: str, output: Path):
    tee = _Tee(sys.stdout)
    sys.stdout = tee
    try:
        yield
    finally:
        sys.stdout = tee.stream
    record = {
        "benchmark": name,
        "command": " ".join(["python", f"benchmarks/{name}.py", *sys.argv[1:]]),
        "machine": machine(),
        "lines": tee.captured.getvalue().rstrip("\n").splitlines(),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"figures written to {output}", file=sys.stderr)
