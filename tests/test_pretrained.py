"""model.pretrained_checkpoint: PANN CNN6 weights read from a file the test writes (nothing downloaded),
every tensor but the head loaded, and one clear line for a file that cannot initialise the network."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from spira.config import compose_config
from spira.models.cnn6 import Cnn6
from spira.pipeline.training_run import fit_settings
from spira.training.fit import build_module
from spira.training.pretrained import PretrainedCheckpointError, load_pann_weights


def write_pann_checkpoint(path: Path, seed: int = 1) -> dict[str, torch.Tensor]:
    """A checkpoint laid out as PANN's authors publish Cnn6_mAP=0.343.pth: {"iteration", "model": state_dict},
    the state dict holding their front end's tensors and a 527-class `fc_audioset` head."""
    torch.manual_seed(seed)
    net = Cnn6(num_features=64, num_frames=401)
    for module in net.modules():  # running statistics that are not a fresh network's
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    state = {key: value for key, value in net.state_dict().items() if not key.startswith("fc_out.")}
    state |= {
        "spectrogram_extractor.stft.conv_real.weight": torch.randn(257, 1, 512),
        "logmel_extractor.melW": torch.randn(257, 64),
        "fc_audioset.weight": torch.randn(527, 512),
        "fc_audioset.bias": torch.randn(527),
    }
    torch.save({"iteration": 100, "model": state}, path)
    return state


def test_every_tensor_but_the_head_comes_from_the_checkpoint(tmp_path: Path):
    state = write_pann_checkpoint(tmp_path / "Cnn6_mAP=0.343.pth")
    torch.manual_seed(0)
    net = Cnn6(num_features=64, num_frames=401)
    head_before = net.fc_out.weight.detach().clone()
    loaded = load_pann_weights(net, tmp_path / "Cnn6_mAP=0.343.pth")
    assert loaded["file"] == "Cnn6_mAP=0.343.pth" and len(loaded["sha256"]) == 64
    own = net.state_dict()
    assert loaded["tensors"] == len(own) - 2  # all but fc_out.weight and fc_out.bias
    for key, value in own.items():
        if key.startswith("fc_out."):
            continue
        assert torch.equal(value, state[key]), key
    assert torch.equal(net.fc_out.weight, head_before)


def test_a_bare_state_dict_loads_too(tmp_path: Path):
    state = write_pann_checkpoint(tmp_path / "wrapped.pth")
    torch.save(state, tmp_path / "bare.pth")
    net = Cnn6(num_features=64, num_frames=401)
    load_pann_weights(net, tmp_path / "bare.pth")
    assert torch.equal(net.conv_block4.conv1.weight, state["conv_block4.conv1.weight"])


def test_files_that_cannot_initialise_the_network_are_refused_with_one_line(tmp_path: Path):
    write_pann_checkpoint(tmp_path / "pann.pth")
    net = Cnn6(num_features=64, num_frames=401)
    with pytest.raises(PretrainedCheckpointError, match=r"missing\.pth: model.pretrained_checkpoint names no file"):
        load_pann_weights(net, tmp_path / "missing.pth")
    (tmp_path / "noise.pth").write_bytes(b"not a checkpoint at all")
    with pytest.raises(PretrainedCheckpointError, match=r"noise\.pth: not a PyTorch checkpoint of plain tensors"):
        load_pann_weights(net, tmp_path / "noise.pth")
    small = Cnn6(num_features=64, num_frames=401, base_channels=16)
    with pytest.raises(PretrainedCheckpointError, match=r"conv_block1\.conv1\.weight is \(64, 1, 5, 5\) in the checkpoint, \(16, 1, 5, 5\) in the network"):
        load_pann_weights(small, tmp_path / "pann.pth")
    torch.save({"model": {"conv_block1.conv1.weight": torch.zeros(64, 1, 5, 5)}}, tmp_path / "partial.pth")
    with pytest.raises(PretrainedCheckpointError, match=r"partial\.pth: not a checkpoint of this network: it lacks bn0\.bias and \d+ more"):
        load_pann_weights(net, tmp_path / "partial.pth")
    for error in ("missing.pth", "noise.pth"):
        with pytest.raises(PretrainedCheckpointError) as raised:
            load_pann_weights(net, tmp_path / error)
        assert "\n" not in str(raised.value)


def test_the_train_stage_starts_from_the_checkpoint_and_the_network_never_sees_its_path(tmp_path: Path, prepared_features: Path):
    state = write_pann_checkpoint(tmp_path / "pann.pth")
    cfg = compose_config(["model=cnn6", "features=logmel", f"model.pretrained_checkpoint={tmp_path / 'pann.pth'}"])
    settings = fit_settings(cfg)
    assert settings.pretrained_checkpoint == str(tmp_path / "pann.pth") and "pretrained_checkpoint" not in settings.model
    module = build_module(settings, prepared_features)
    assert "pretrained_checkpoint" not in module.hparams.net
    assert torch.equal(module.net.conv_block2.conv1.weight, state["conv_block2.conv1.weight"])
    assert torch.equal(module.net.bn0.running_var, state["bn0.running_var"])


@pytest.fixture
def prepared_features(tmp_path: Path) -> Path:
    """A features folder without normalisation: build_module reads none."""
    folder = tmp_path / "features"
    folder.mkdir()
    return folder
