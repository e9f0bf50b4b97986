"""What "the same metrics" means: the machine a run was made on, and a comparison of two runs' metrics.

Same data, params and code give byte-identical metrics on the same machine:
every random draw is seeded and CPU kernels are deterministic. On another
machine the kernels may differ (AVX2 against AVX-512, another CPU vendor's
library paths), float sums round differently, and training drifts a little:
there two runs agree within a tolerance, not to the byte. `machine_record`
says which case applies; `compare_metrics` applies it.
"""

from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

# The instruction sets that change which CPU kernels torch runs, and so the last bits of a float.
KERNEL_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "asimd", "sve")


def cpu_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, list[str]]:
    """The CPU's model name and which of KERNEL_FLAGS it has (empty where /proc/cpuinfo is missing)."""
    model, flags = platform.processor() or platform.machine(), set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "model name" and value.strip():
                model = value.strip()
            elif key in ("flags", "features"):
                flags |= set(value.split())
    return model, sorted(flags & set(KERNEL_FLAGS))


def machine_record(accelerator: str = "cpu") -> dict:
    """What decides a run's floating-point results, without any name of the host (which often names a hospital)."""
    model, flags = cpu_description()
    record = {
        "cpu": model,
        "cpu_kernel_flags": flags,
        "architecture": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator,
    }
    if accelerator == "gpu" and torch.cuda.is_available():
        record["gpu"] = torch.cuda.get_device_name(0)
    return record


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


MISSING = "(missing)"
# Where a run came from, not what it measured: the commit it ran at (a committed run ran before
# its own commit) and the checkpoint's hash (Lightning stores the checkpoint folder's absolute path).
PROVENANCE_KEYS = frozenset({"code_commit", "checkpoint_md5"})


@dataclass(frozen=True)
class Difference:
    """One metric whose rerun value is not accepted."""

    key: str  # file:path.to.metric
    committed: object
    rerun: object

    @property
    def gap(self) -> float | None:
        return abs(float(self.rerun) - float(self.committed)) if is_number(self.committed) and is_number(self.rerun) else None


def flatten(content: object, prefix: str) -> dict[str, object]:
    """{"test_clean": {"auroc": 0.9}} -> {"<prefix>:test_clean.auroc": 0.9}; lists by index."""
    if isinstance(content, dict):
        items = content.items()
    elif isinstance(content, list):
        items = ((str(index), value) for index, value in enumerate(content))
    else:
        return {prefix: content}
    flat: dict[str, object] = {}
    for key, value in items:
        flat |= flatten(value, f"{prefix}{'.' if ':' in prefix else ':'}{key}")
    return flat


def values_agree(committed: object, rerun: object, tolerance: float) -> bool:
    """Equal (NaN equals NaN); or, both numbers, within `tolerance` (absolute). Strings, booleans and nulls must be equal."""
    if committed == rerun and type(committed) is type(rerun):
        return True
    # A metric undefined in both runs (a PPV without positive calls is NaN) is the same result.
    if isinstance(committed, float) and isinstance(rerun, float) and math.isnan(committed) and math.isnan(rerun):
        return True
    if tolerance and is_number(committed) and is_number(rerun):
        return abs(float(rerun) - float(committed)) <= tolerance
    return False


def is_provenance(key: str) -> bool:
    return key.rpartition(".")[2].rpartition(":")[2] in PROVENANCE_KEYS


def compare_metrics(committed: dict[str, object], rerun: dict[str, object], tolerance: float = 0.0) -> list[Difference]:
    """Every metric of either run that the other lacks or does not match (flat dicts from `flatten`).

    tolerance 0 asks for exact equality, as on the machine that made the committed run.
    Provenance (PROVENANCE_KEYS) is not a metric and is not compared."""
    differences = []
    for key in sorted(key for key in committed.keys() | rerun.keys() if not is_provenance(key)):
        if key not in committed or key not in rerun:
            differences.append(Difference(key, committed.get(key, MISSING), rerun.get(key, MISSING)))
        elif not values_agree(committed[key], rerun[key], tolerance):
            differences.append(Difference(key, committed[key], rerun[key]))
    return differences
