"""Sweep, logger and trainer configs compose as documented; run folders, data version and sweep summaries."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from hydra.plugins.launcher import Launcher
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.strategies import DDPStrategy
from omegaconf import OmegaConf

from conftest import REPO_ROOT
from spira.config import compose_config
from spira.sweeps import SweepSummary, summarize_sweep
from spira.tracking import data_version, instantiate_loggers
from spira.pipeline.model import run_outputs
from spira.experiment import require_features, run_config

CONFIG_DIR = REPO_ROOT / "conf"


def compose_with_hydra(overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(config_name="config", overrides=overrides, return_hydra_config=True)


def test_optuna_search_follows_the_objective_and_searches_existing_keys():
    cfg = compose_with_hydra(["hparams_search=optuna", "seed=7", "objective.direction=minimize"])
    sweeper = cfg.hydra.sweeper
    assert cfg.hydra.mode == RunMode.MULTIRUN
    # The sweeper takes its direction and seed from the run's objective and seed.
    assert sweeper.direction == "minimize" and sweeper.sampler.seed == 7
    # Every searched key is a param of the composed config (a misspelt key would be a new one).
    assert sweeper.params and all(OmegaConf.select(cfg, key) is not None for key in sweeper.params)


@pytest.mark.parametrize(
    ("search", "target", "model_keys"),
    [
        ("optuna_mfcc_transformer", "spira.models.mfcc_transformer.MfccTransformer", {"model.d_model", "model.num_layers", "model.frame_stack", "model.pooling"}),
        ("optuna_cnn6", "spira.models.cnn6.Cnn6", {"model.base_channels", "model.fc_dropout"}),
    ],
)
def test_a_models_search_space_picks_its_model_and_features_and_searches_its_own_keys(search: str, target: str, model_keys: set[str]):
    cfg = compose_with_hydra([f"hparams_search={search}"])
    params = cfg.hydra.sweeper.params
    assert cfg.model._target_ == target and cfg.hydra.mode == RunMode.MULTIRUN
    # The shared search (optimiser, batch) and the model's own keys, each an existing param.
    assert model_keys | {"train.optimizer.lr", "train.batch_size", "model.dropout"} <= set(params)
    assert all(OmegaConf.select(cfg, key) is not None for key in params)


def test_slurm_launcher_composes_to_the_installed_launcher():
    launcher = compose_with_hydra(["hydra/launcher=slurm", "hydra.launcher.nodes=2"]).hydra.launcher
    # An installed Hydra launcher (Hydra's plugin discovery imports plugin modules afresh: compare by name).
    launcher_class = get_class(launcher._target_)
    assert issubclass(launcher_class, Launcher) and launcher_class.__name__ == "SlurmLauncher"
    # One task per GPU, so DDP's world size is nodes x GPUs per node.
    assert launcher.nodes == 2 and launcher.tasks_per_node == launcher.gpus_per_node


def test_sweep_summary_callback_is_registered_and_cwd_kept():
    hydra = compose_with_hydra([]).hydra
    assert hydra.job.chdir is False
    assert get_class(hydra.callbacks.sweep_summary._target_) is SweepSummary


def test_params_yaml_has_no_hydra_node():
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    assert "hydra" not in params and "hparams_search" not in params


def test_the_loggers_of_a_list_leave_the_pipeline_dvc_yaml_alone_and_upload_no_model(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    loggers = instantiate_loggers(compose_config(["logger=[csv,dvclive,wandb]"], config_dir=CONFIG_DIR))
    assert [type(logger).__name__ for logger in loggers] == ["CSVLogger", "DVCLiveLogger", "WandbLogger"]
    # DVCLive writes its own dvclive/dvc.yaml, never the pipeline's.
    live = loggers[1].experiment
    live.log_metric("val/file_auroc", 0.5)
    live.next_step()
    live.end()
    assert (tmp_path / "dvc.yaml").read_text() == "stages: {}\n"
    assert "plots/metrics" in (tmp_path / "dvclive" / "dvc.yaml").read_text()
    assert (tmp_path / "dvclive" / "plots" / "metrics" / "val" / "file_auroc.tsv").is_file()
    # W&B uploads no checkpoint (Lightning's WandbLogger keeps the setting as _log_model).
    assert loggers[2]._log_model is False


def test_the_ddp_cpu_trainer_is_a_two_process_ddp_trainer_on_cpu(tmp_path: Path):
    """What training builds from trainer=ddp_cpu (the trainer config instantiated, as fit does)."""
    trainer = instantiate(compose_config(["trainer=ddp_cpu"]).trainer, logger=False, default_root_dir=str(tmp_path))
    assert isinstance(trainer.strategy, DDPStrategy) and isinstance(trainer.accelerator, CPUAccelerator)
    assert trainer.num_devices == trainer.world_size == 2
    assert trainer.max_epochs == compose_config().trainer.max_epochs


def test_run_config_routes_every_output_into_the_run_folder(tmp_path: Path):
    cfg = run_config(compose_config(["logger=[csv,dvclive,wandb]"]), tmp_path)
    outputs = run_outputs(tmp_path / "run", tmp_path / "repo")
    assert (outputs.layout.checkpoints, outputs.layout.resume) == (tmp_path / "run" / "checkpoints", tmp_path / "run" / "resume")
    assert (outputs.layout.prepared, outputs.layout.features) == (tmp_path / "repo" / "data/prepared", tmp_path / "repo" / "data/features")
    assert outputs.test_metrics.parent == outputs.report_dir.parent == tmp_path / "run"
    assert cfg.trainer.default_root_dir == str(tmp_path)
    assert cfg.logger.csv.save_dir == str(tmp_path / "logs")
    assert cfg.logger.wandb.save_dir == str(tmp_path)
    assert cfg.logger.dvclive.dir == str(tmp_path / "dvclive") and cfg.logger.dvclive.dvcyaml is False


def test_missing_features_name_the_command_to_run(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="dvc repro featurize"):
        require_features(tmp_path / "features")


def test_data_version_is_the_prepare_output_hash_in_dvc_lock(tmp_path: Path):
    lock = {"schema": "2.0", "stages": {"prepare": {"cmd": "x", "outs": [{"path": "data/prepared", "md5": "abc.dir", "size": 1}]}}}
    (tmp_path / "dvc.lock").write_text(yaml.safe_dump(lock))
    assert data_version(tmp_path / "data/prepared", tmp_path / "dvc.lock") == "abc.dir"
    assert data_version(tmp_path / "data/other", tmp_path / "dvc.lock") is None
    assert data_version(tmp_path / "data/prepared", tmp_path / "missing.lock") is None


def test_sweep_summary_sorts_by_the_objective_and_lists_failed_runs(tmp_path: Path):
    runs = {"0": ("model.dropout=0.5", 0.6), "1": ("model.dropout=0.7", 0.9), "2": ("model.dropout=1.5", None), "3": ("model.dropout=0.3", 0.7)}
    for job, (override, auroc) in runs.items():
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump([override]))
        if auroc is None:
            (tmp_path / job / "error.txt").write_text("ValueError")
        else:
            (tmp_path / job / "metrics.json").write_text(json.dumps({"val/file_auroc": auroc, "test_noisy/auroc": auroc / 2}))

    best_first = summarize_sweep(tmp_path, "val/file_auroc", "maximize")
    assert list(best_first["job"]) == ["1", "3", "0", "2"]
    assert list(best_first["model.dropout"]) == ["0.7", "0.3", "0.5", "1.5"]
    assert list(best_first["status"]) == ["ok", "ok", "ok", "failed"]
    assert best_first["test_noisy/auroc"].iloc[0] == 0.45
    assert "test_clean/auroc" not in best_first  # no run has it
    lowest_first = summarize_sweep(tmp_path, "val/file_auroc", "minimize")
    assert list(lowest_first["job"]) == ["0", "3", "1", "2"]
    assert pd.isna(lowest_first["val/file_auroc"].iloc[-1])
