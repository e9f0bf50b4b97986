"""`spira verify` (`make verify`): a rerun from scratch reproduces the committed metrics exactly
on the machine that made them, and within a stated tolerance on another."""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest

from conftest import PipelineRun, run

from spira.pipeline.verify import compare_file, read_metrics
from spira.reproducibility import MISSING, compare_metrics, cpu_description, flatten, machine_record

COMMITTED_OUTPUTS = ("dvc.lock", "metrics", "reports", "eval")


def test_flatten_names_every_value_by_file_and_path():
    assert flatten({"test_clean": {"auroc": 0.9, "n": 3}, "rules": [{"passed": True}]}, "metrics/test.json") == {
        "metrics/test.json:test_clean.auroc": 0.9,
        "metrics/test.json:test_clean.n": 3,
        "metrics/test.json:rules.0.passed": True,
    }


def test_exact_comparison_accepts_only_identical_values():
    committed = {"f:a": 0.912458, "f:b": "fail", "f:c": 60, "f:ppv": float("nan")}
    assert compare_metrics(committed, dict(committed) | {"f:ppv": float("nan")}) == []
    assert [item.key for item in compare_metrics(committed, dict(committed) | {"f:ppv": 0.5})] == ["f:ppv"]
    differences = compare_metrics(committed, {"f:a": 0.912459, "f:b": "fail", "f:c": 60, "f:ppv": float("nan")})
    assert [(item.key, item.committed, item.rerun) for item in differences] == [("f:a", 0.912458, 0.912459)]
    assert abs(differences[0].gap - 1e-6) < 1e-12


def test_tolerance_applies_to_numbers_only_and_missing_values_always_differ():
    committed = {"f:auroc": 0.8848, "f:loss": 0.5175, "f:decision": "fail", "f:flagged": True, "f:gone": 1.0}
    rerun = {"f:auroc": 0.8834, "f:loss": 0.5595, "f:decision": "pass", "f:flagged": 1, "f:new": 2.0}
    differences = {item.key: item for item in compare_metrics(committed, rerun, tolerance=0.02)}
    # 0.0014 apart is within 0.02; 0.042 is not; strings must match; True is no number; a missing value differs.
    assert sorted(differences) == ["f:decision", "f:flagged", "f:gone", "f:loss", "f:new"]
    assert differences["f:gone"].rerun == MISSING and differences["f:new"].committed == MISSING
    assert abs(differences["f:loss"].gap - 0.042) < 1e-9 and differences["f:decision"].gap is None


def test_provenance_is_not_compared():
    committed = {"metrics/gate.json:challenger.code_commit": "aaa", "metrics/gate.json:challenger.checkpoint_md5": "b", "metrics/gate.json:threshold": 0.5}
    rerun = {"metrics/gate.json:challenger.code_commit": "ccc", "metrics/gate.json:challenger.checkpoint_md5": "d", "metrics/gate.json:threshold": 0.5}
    assert compare_metrics(committed, rerun) == []
    assert compare_file("metrics/gate.json", committed, rerun, 0.0).metrics == 1


def test_cpu_description_reads_model_and_kernel_flags(tmp_path: Path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\nflags\t\t: fpu sse2 avx avx2 fma avx512f pni\n\n")
    assert cpu_description(cpuinfo) == ("Example CPU 9000", ["avx", "avx2", "avx512f", "fma"])


def test_machine_record_names_no_host():
    record = machine_record()
    assert record["accelerator"] == "cpu" and record["torch_threads"] >= 1 and record["architecture"] == platform.machine()
    assert platform.node() not in json.dumps(record)


@pytest.mark.slow
def test_tolerance_mode_on_real_metrics_flags_only_what_moved_beyond_it(smoke_pipeline: PipelineRun):
    committed = read_metrics(smoke_pipeline.repo, ["metrics/test.json"])["metrics/test.json"]
    rerun = dict(committed)
    rerun["metrics/test.json:test_clean.auroc"] = committed["metrics/test.json:test_clean.auroc"] + 0.01
    rerun["metrics/test.json:test_noisy.accuracy"] = committed["metrics/test.json:test_noisy.accuracy"] - 0.05
    within = compare_file("metrics/test.json", committed, rerun, tolerance=0.02)
    assert [item.key for item in within.differences] == ["metrics/test.json:test_noisy.accuracy"]
    assert abs(within.largest_gap - 0.05) < 1e-9 and within.metrics == len(committed)
    exact = compare_file("metrics/test.json", committed, rerun, tolerance=0.0)
    assert len(exact.differences) == 2


@pytest.mark.slow
def test_verify_reruns_the_committed_pipeline_and_finds_every_metric_identical(smoke_pipeline: PipelineRun, tmp_path: Path):
    """The smoke pipeline's results, committed, then `spira verify`: a rerun of every stage from
    scratch on this machine gives every metric exactly (the machine record matches), and the
    metrics files and predictions byte for byte (determinism on CPU)."""
    repo = tmp_path / "repo"
    run(["git", "clone", "--quiet", str(smoke_pipeline.repo), str(repo)], tmp_path)
    for name in COMMITTED_OUTPUTS:
        source = smoke_pipeline.repo / name
        if source.is_dir():
            shutil.copytree(source, repo / name, dirs_exist_ok=True)
        else:
            shutil.copy2(source, repo / name)
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "results"], repo)
    committed_values = sum(len(values) for values in read_metrics(repo, ["metrics/test.json", "metrics/train.json"]).values())

    workdir = tmp_path / "scratch"
    workdir.mkdir()
    result = run(["spira", "verify", "--workdir", str(workdir), "--keep"], repo)
    assert "same machine as the committed run" in result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("  metrics/")]
    assert {line.split(":")[0].strip() for line in lines} == {
        "metrics/train.json", "metrics/test.json", "metrics/audit.json", "metrics/gate.json", "metrics/subgroups.json"}  # fmt: skip
    assert all(line.endswith("values identical") for line in lines), result.stdout
    compared = sum(int(line.split(": ")[1].split()[0]) for line in lines)
    assert compared > committed_values
    assert result.stdout.strip().splitlines()[-1].startswith(f"reproduced: {compared} values in 5 metrics files")
    (scratch,) = workdir.iterdir()
    for path in ("metrics/test.json", "metrics/train.json", "eval/predictions_test_clean.csv", "eval/predictions_test_noisy.csv"):
        assert (scratch / "repo" / path).read_bytes() == (repo / path).read_bytes(), path
    assert run(["git", "status", "--porcelain"], repo).stdout == ""


def test_verify_without_committed_metrics_says_so_and_leaves_no_scratch_clone(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["dvc", "init", "-q"], repo)
    run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "empty"], repo)
    workdir = tmp_path / "scratch"
    workdir.mkdir()
    result = run(["spira", "verify", "--workdir", str(workdir)], repo, check=False)
    assert result.returncode == 1
    assert "holds no metrics to compare: run `dvc repro` and commit dvc.lock and metrics/ first" in result.stderr
    assert list(workdir.iterdir()) == []
