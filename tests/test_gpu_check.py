"""benchmarks/gpu_check.sh without a GPU: its argument handling and its comparison of predictions."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from spira.config import compose_config
from spira.features.featurize import featurize
from spira.pipeline.features import featurize_settings
from spira.pipeline.training_run import fit_settings
from spira.training.fit import build_module
from test_augment import prepared  # noqa: F401  (the prepared-data fixture)

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.sh"


def _check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=60)


def _commands(result: subprocess.CompletedProcess) -> list[str]:
    """The commands planned, without the `cd WORK && ` of those that run in the work folder."""
    return [line[2:].split(" && ", 1)[-1] for line in result.stdout.splitlines() if line.startswith("+ ")]


def test_dry_run_plans_gpu_and_ddp_runs_with_the_bf16_tolerance(tmp_path: Path):
    result = _check("--dry-run", "--cohort", "smoke", "--steps", "7", "--work", str(tmp_path / "work"))
    assert result.returncode == 0, result.stderr
    commands = _commands(result)
    trains = [command for command in commands if command.startswith("python -m spira.experiment ")]
    assert len(trains) == 2
    assert "trainer=gpu" in trains[0] and "trainer=ddp" in trains[1]
    assert all("+trainer.max_steps=7" in command and "experiment=smoke" in command for command in trains)
    compares = [command for command in commands if "compare_predictions.py" in command]
    assert [c.split()[2] for c in compares] == [str(tmp_path / "work/gpu/checkpoints/best.ckpt"), str(tmp_path / "work/ddp/checkpoints/best.ckpt")]
    assert all("--device cuda --precision bf16-mixed --tolerance 0.02" in command for command in compares)
    assert commands[-1].startswith("python benchmarks/bench_epoch.py") and commands[-1].endswith("trainer=gpu")
    assert not (tmp_path / "work").exists()


def test_cpu_mode_uses_cpu_trainers_and_a_float32_tolerance(tmp_path: Path):
    commands = _commands(_check("--cpu", "--dry-run", "--work", str(tmp_path)))
    trains = [command for command in commands if command.startswith("python -m spira.experiment ")]
    assert ["trainer=cpu" in trains[0], "trainer=ddp_cpu" in trains[1]] == [True, True]
    assert all("experiment=smoke" not in command for command in trains)
    assert all("--device cpu --precision 32-true --tolerance 1e-6" in c for c in commands if "compare_predictions.py" in c)


@pytest.mark.parametrize(("args", "message"), [(["--steps", "0"], "--steps must be a positive integer"),
                                               (["--cohort", "big"], "--cohort must be default or smoke"),
                                               (["--frobnicate"], "unknown argument --frobnicate")])
def test_bad_arguments_are_refused_with_the_reason(args: list[str], message: str):
    result = _check("--dry-run", *args)
    assert result.returncode == 2 and message in result.stderr


def test_predictions_are_compared_per_file_with_the_cpu(prepared: Path, tmp_path: Path):
    spec = importlib.util.spec_from_file_location("compare_predictions", REPO_ROOT / "benchmarks" / "compare_predictions.py")
    compare_predictions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare_predictions)
    cfg = compose_config()
    featurize(featurize_settings(cfg), prepared, tmp_path / "features", {})
    module = build_module(fit_settings(cfg), tmp_path / "features")
    same = compare_predictions.compare(module, tmp_path / "features", "cpu", "32-true")
    assert same == {"test": 0.0, "test_noisy": 0.0}
    # bf16 autocast (on the CPU here, on the GPU in gpu_check.sh): close, not equal.
    bf16 = compare_predictions.compare(module, tmp_path / "features", "cpu", "bf16-mixed")
    assert all(0.0 < value < 0.02 for value in bf16.values()), bf16
