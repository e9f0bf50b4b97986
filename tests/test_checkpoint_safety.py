"""Safe checkpoints: tensors and plain data only, and only allowlisted objects are rebuilt."""

from __future__ import annotations

import pickle
from pathlib import Path

import lightning
import pytest
import torch

from spira.config import compose_config
from spira.training.checkpoint import UntrustedCheckpointError, load_module, read_checkpoint
from spira.training.module import SpiraLitModule

ALLOWED = list(compose_config().checkpoint.allowed_targets)


def lightning_checkpoint(module: SpiraLitModule, path: Path, **hyper_parameters) -> Path:
    """What Lightning's checkpoint holds for loading: weights, hyperparameters, version, epoch."""
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": {**dict(module.hparams), **hyper_parameters},
            "pytorch-lightning_version": lightning.__version__,
            "epoch": 3,
            "global_step": 12,
        },
        path,
    )
    return path


@pytest.fixture
def module() -> SpiraLitModule:
    cfg = compose_config()
    net = {"_target_": "spira.models.spira_conv.SpiraConvV2", "num_features": 40, "num_frames": 401, "dropout": 0.7}
    return SpiraLitModule(net=net, features=dict(cfg.features), optimizer=dict(cfg.train.optimizer), warmup_steps=10)


def test_the_default_allowlist_is_the_project_models_and_torch_optimisers():
    assert ALLOWED == ["spira.models.", "torch.optim."]


def test_a_checkpoint_of_the_project_loads_with_its_weights(module, tmp_path):
    loaded = load_module(lightning_checkpoint(module, tmp_path / "best.ckpt"), ALLOWED)
    assert type(loaded.net).__name__ == "SpiraConvV2"
    for name, tensor in module.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    assert read_checkpoint(tmp_path / "best.ckpt", ALLOWED)["epoch"] == 3


@pytest.mark.parametrize("field", ["net", "optimizer"])
def test_a_checkpoint_naming_another_target_is_refused_with_that_name(module, tmp_path, field):
    crafted = dict(module.hparams[field]) | {"_target_": "os.system", "command": "touch pwned"}
    path = lightning_checkpoint(module, tmp_path / "crafted.ckpt", **{field: crafted})
    with pytest.raises(UntrustedCheckpointError, match=r"asks to build 'os.system'.*checkpoint.allowed_targets"):
        load_module(path, ALLOWED)
    # Configurable: a prefix the user trusts is let through (read only here, nothing built).
    assert read_checkpoint(path, [*ALLOWED, "os."])["hyper_parameters"][field]["_target_"] == "os.system"


def test_a_prefix_is_not_a_substring_match(module, tmp_path):
    crafted = dict(module.hparams["net"]) | {"_target_": "spira.modelsx.Evil"}
    with pytest.raises(UntrustedCheckpointError, match="spira.modelsx.Evil"):
        load_module(lightning_checkpoint(module, tmp_path / "crafted.ckpt", net=crafted), ALLOWED)


class RunsCodeWhenUnpickled:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_holding_a_pickled_object_is_refused_before_it_runs(module, tmp_path):
    marker = tmp_path / "code-ran"
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams), "payload": RunsCodeWhenUnpickled(marker)}, path)
    with pytest.raises(pickle.UnpicklingError):
        load_module(path, ALLOWED)
    assert not marker.exists()
