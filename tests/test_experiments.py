"""Experiments at scale on a tiny cohort: Hydra multirun and Optuna, the DVC
queue with DVCLive and W&B (offline), and DDP on two CPU processes.

One featurized repository is built per session; tests that change it work on
a copy (copying is much cheaper than re-running the data stages).
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import PipelineRun, committed_copy, run, run_activated
from spira.config import compose_params
from test_notebooks import execute_notebook, printed_text

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def featurized_repo(smoke_pipeline: PipelineRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A committed tiny pipeline repo whose stages have run (a copy of the shared smoke run):
    experiments re-run train onwards on its prepared data and features."""
    return committed_copy(smoke_pipeline.repo, tmp_path_factory.mktemp("featurized") / "repo")


@pytest.fixture
def repo_copy(featurized_repo: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(featurized_repo, copy, symlinks=True)
    return copy


def spira_train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "spira.experiment", *args, "experiment=smoke"], cwd)


def test_hydra_multirun_writes_one_folder_per_run_and_a_sorted_summary(featurized_repo: Path, tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    # dropout 1.5 is rejected by torch: a failing run must not stop the sweep.
    pipeline_outputs = {path: path.read_bytes() for path in sorted((featurized_repo / "models").rglob("*")) if path.is_file()}
    result = spira_train(["-m", "model.dropout=0.5,0.7,1.5", f"hydra.sweep.dir={sweep_dir}"], featurized_repo)

    for job, dropout in (("0", 0.5), ("1", 0.7)):
        run_dir = sweep_dir / job
        assert (run_dir / "checkpoints" / "best.ckpt").is_file()
        assert yaml.safe_load((run_dir / "config.yaml").read_text())["model"]["dropout"] == dropout
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["epochs_run"] == 2
        for name in ("val/file_auroc", "test_clean/auroc", "test_noisy/auroc", "test_clean/accuracy"):
            assert 0.0 <= metrics[name] <= 1.0, name
        assert (run_dir / "eval" / "predictions_test_noisy.csv").is_file()
    assert "dropout probability" in (sweep_dir / "2" / "error.txt").read_text()
    assert not (sweep_dir / "2" / "metrics.json").exists()

    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert len(summary) == 3
    assert list(summary["status"]) == ["ok", "ok", "failed"]
    finished = summary.iloc[:2]
    assert finished["val/file_auroc"].is_monotonic_decreasing
    for _, row in finished.iterrows():
        run_metrics = json.loads((sweep_dir / str(row["job"]) / "metrics.json").read_text())
        assert row["val/file_auroc"] == pytest.approx(run_metrics["val/file_auroc"])
        assert row["test_noisy/auroc"] == pytest.approx(run_metrics["test_noisy/auroc"])
    assert sorted(finished["model.dropout"]) == [0.5, 0.7]
    assert "Sweep summary" in result.stdout + result.stderr
    # Run folders live outside the repository: DVC's pipeline outputs are untouched.
    assert pipeline_outputs and {path: path.read_bytes() for path in sorted((featurized_repo / "models").rglob("*")) if path.is_file()} == pipeline_outputs


def test_optuna_sweep_returns_the_configured_metric(featurized_repo: Path, tmp_path: Path):
    sweep_dir = tmp_path / "optuna"
    spira_train(["hparams_search=optuna", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"], featurized_repo)
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert len(summary) == 2 and (summary["status"] == "ok").all()
    # The objective Optuna saw is each run's val/file_auroc: the best trial is the summary's top row.
    assert results["best_value"] == pytest.approx(summary["val/file_auroc"].max())
    assert results["best_params"]["model.dropout"] == pytest.approx(summary["model.dropout"].iloc[0])


def read_wandb_records(path: Path) -> list:
    """Records of a W&B transaction log (.wandb): a LevelDB-style log of 32 KiB
    blocks after a 7-byte header, each record chunk with a 7-byte header
    (crc32, length, type: 1 full, 2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2

    data, block, position = path.read_bytes(), 32768, 7
    assert data[:4] == b":W&B"
    records, pending = [], b""
    while position + 7 <= len(data):
        left_in_block = block - position % block
        if left_in_block < 7:
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_run_contents(run_dir: Path) -> dict:
    """job type, group, config, per-epoch history and summary of an offline W&B run."""
    records = read_wandb_records(next(run_dir.glob("run-*.wandb")))
    contents = {"history": [], "summary": {}, "config": {}}
    for record in records:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            contents.update(job_type=record.run.job_type, group=record.run.run_group)
            contents["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "config":
            contents["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            contents["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            contents["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.summary.update})
    return contents


def wait_for_queue(repo: Path, timeout_s: float = 300) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Queued" not in status and "Running" not in status:
            return status
        time.sleep(3)
    raise AssertionError(f"DVC queue still busy after {timeout_s} s:\n{status}")


def test_dvc_queue_runs_two_experiments_with_dvclive_and_offline_wandb(repo_copy: Path):
    # The README's recipe, typed in a shell with the virtualenv activated: the
    # queue worker starts `dvc` from PATH.
    run_activated("dvc exp run --queue -S 'train.optimizer.lr=1e-3,3e-4' -S 'logger=[csv,dvclive,wandb]'; dvc queue start -j 1", repo_copy)
    status = wait_for_queue(repo_copy)
    assert status.count("Success") == 2, status

    # dvc exp show: both experiments with their params and clean and noisy test metrics.
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo_copy).stdout)
    experiments = [exp for baseline in shown for exp in (baseline.get("experiments") or [])]
    assert len(experiments) == 2
    learning_rates = set()
    for experiment in experiments:
        data = experiment["revs"][0]["data"]
        learning_rates.add(data["params"]["params.yaml"]["data"]["train"]["optimizer"]["lr"])
        test = data["metrics"]["metrics/test.json"]["data"]
        assert 0.0 <= test["test_clean"]["auroc"] <= 1.0 and 0.0 <= test["test_noisy"]["accuracy"] <= 1.0
        # DVCLive's per-epoch curves are committed with the experiment.
        assert data["metrics"]["dvclive/metrics.json"]["data"]["epoch"] == 1
    assert learning_rates == {0.001, 0.0003}
    names = [experiment["name"] for experiment in experiments]
    plots = json.loads(run(["dvc", "plots", "diff", *names, "--json"], repo_copy).stdout)
    val_loss = plots["data"]["dvclive/plots/metrics/val/loss.tsv"][0]
    assert sorted(val_loss["revisions"]) == sorted(names)
    assert {point["rev"] for point in val_loss["content"]["data"]["values"]} == set(names)

    # The comparison notebook reads the same `dvc exp show --json`.
    exp_show_json = repo_copy / "exps.json"
    exp_show_json.write_text(json.dumps(shown))
    notebook = execute_notebook("compare_experiments.ipynb", {"SPIRA_EXP_SHOW_JSON": str(exp_show_json)})
    assert "2 experiments with test metrics" in printed_text(notebook)

    # W&B: offline runs under the repository root, not the queue's temporary copy.
    runs = [wandb_run_contents(path) for path in sorted((repo_copy / "wandb").glob("offline-run-*"))]
    assert sorted(r["job_type"] for r in runs) == ["evaluate", "evaluate", "train", "train"]
    assert len({r["group"] for r in runs}) == 1 and runs[0]["group"].startswith("dvc-")
    prepared_md5 = next(out["md5"] for out in yaml.safe_load((repo_copy / "dvc.lock").read_text())["stages"]["prepare"]["outs"])
    for contents in runs:
        assert contents["config"]["data_version"] == prepared_md5
        assert len(contents["config"]["git_commit"]) == 40
    for contents in (r for r in runs if r["job_type"] == "train"):
        epochs = [row for row in contents["history"] if "val/file_auroc" in row]
        assert [row["epoch"] for row in epochs] == [0, 1]
        assert contents["summary"]["model/parameters"] == 691_613
    evaluate_summaries = [r["summary"] for r in runs if r["job_type"] == "evaluate"]
    exp_test_metrics = [e["revs"][0]["data"]["metrics"]["metrics/test.json"]["data"] for e in experiments]
    assert sorted(s["test_noisy/auroc"] for s in evaluate_summaries) == sorted(m["test_noisy"]["auroc"] for m in exp_test_metrics)
    assert all("test_clean/roc_table/path" in s and "test_noisy/confusion_table/path" in s for s in evaluate_summaries)
    # The metric table with intervals: 8 metrics x 2 test sets.
    assert all(s["test/metrics_table/nrows"] == 16 for s in evaluate_summaries)
    # Audio is never logged.
    assert not list((repo_copy / "wandb").rglob("*.wav")) and not list((repo_copy / "wandb").rglob("audio"))


PREDICT_SCRIPT = """
import json, sys
from hydra.utils import instantiate
from spira.config import compose_config
from spira.training.data import FeatureDataModule
from spira.training.checkpoint import load_module

checkpoint, trainer_name, out = sys.argv[1:]
cfg = compose_config([f"trainer={trainer_name}"])
module = load_module(checkpoint, list(cfg.checkpoint.allowed_targets))
trainer = instantiate(cfg.trainer, logger=False)
# Batch size 2: 5 validation windows over 2 ranks leave padded duplicates to drop.
trainer.validate(module, datamodule=FeatureDataModule("data/features", batch_size=2), verbose=False)
if trainer.is_global_zero:
    json.dump({"world_size": trainer.world_size, "files": module.val_file_predictions.tolist()}, open(out, "w"))
"""


def test_ddp_cpu_trains_end_to_end_and_predicts_like_cpu(repo_copy: Path, tmp_path: Path):
    params = tmp_path / "params_ddp.yaml"
    compose_params(params, ["trainer=ddp_cpu"], config_dir=repo_copy / "conf")
    trained = run([sys.executable, "-m", "spira.stages.train", "--params", str(params)], repo_copy)
    assert "MEMBER: 2/2" in trained.stdout + trained.stderr
    summary = json.loads((repo_copy / "metrics/train.json").read_text())
    assert summary["epochs_run"] == 2 and 0.0 <= summary["val/file_auroc"] <= 1.0

    # DDP relaunches its script in child processes, so it runs as a script of its own.
    script = tmp_path / "predict.py"
    script.write_text(PREDICT_SCRIPT)
    predictions = {}
    for trainer_name in ("cpu", "ddp_cpu"):
        out = tmp_path / f"{trainer_name}.json"
        run([sys.executable, str(script), "models/checkpoints/best.ckpt", trainer_name, str(out)], repo_copy)
        predictions[trainer_name] = json.loads(out.read_text())
    assert predictions["cpu"]["world_size"] == 1 and predictions["ddp_cpu"]["world_size"] == 2
    cpu, ddp = np.array(predictions["cpu"]["files"]), np.array(predictions["ddp_cpu"]["files"])
    n_val_files = pd.read_csv(repo_copy / "data/features/val_index.csv")["file_id"].nunique()
    assert cpu.shape == ddp.shape == (n_val_files, 3)
    np.testing.assert_array_equal(cpu[:, [0, 2]], ddp[:, [0, 2]])
    np.testing.assert_allclose(cpu[:, 1], ddp[:, 1], atol=1e-6)
    assert not math.isnan(cpu[:, 1].sum())
