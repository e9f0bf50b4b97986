"""The exported ONNX file's bytes, and so the model version, do not depend on where spira is installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO_ROOT

EXPORT = """
import sys, torch
from pathlib import Path
from spira.models.spira_conv import SpiraConvV2
from spira.serving.export import export_onnx
torch.manual_seed(0)
print(export_onnx(SpiraConvV2(num_features=8, num_frames=64, fc_dim=4), 64, 8, Path(sys.argv[1])))
"""


def export_from_copy(root: Path) -> tuple[str, bytes]:
    """Export a seeded network with spira imported from a copy of the package under `root`."""
    shutil.copytree(REPO_ROOT / "src" / "spira", root / "src" / "spira")
    target = root / "model.onnx"
    env = {**os.environ, "PYTHONPATH": str(root / "src")}
    done = subprocess.run([sys.executable, "-c", EXPORT, str(target)], env=env, capture_output=True, text=True, check=True, timeout=300)
    return done.stdout.split()[-1], target.read_bytes()


def test_two_installs_export_the_same_bytes_and_no_source_path(tmp_path: Path):
    first_sha, first = export_from_copy(tmp_path / "first-install")
    second_sha, second = export_from_copy(tmp_path / "second-install")
    assert first_sha == second_sha and first == second
    assert b"first-install" not in first and b"stack_trace" not in first


def test_the_mfcc_transformer_exports_and_onnxruntime_gives_its_logits(tmp_path: Path):
    import numpy as np
    import onnxruntime as ort
    import torch

    from spira.models.mfcc_transformer import MfccTransformer
    from spira.serving.contract import INPUT_NAME
    from spira.serving.export import export_onnx

    torch.manual_seed(0)
    for pooling in ("mean", "cls"):
        net = MfccTransformer(num_features=40, num_frames=401, pooling=pooling).eval()
        export_onnx(net, 401, 40, tmp_path / f"{pooling}.onnx")
        session = ort.InferenceSession(str(tmp_path / f"{pooling}.onnx"), providers=["CPUExecutionProvider"])
        windows = torch.randn(5, 401, 40)  # another batch size than the export's example
        with torch.no_grad():
            expected = net(windows).numpy()
        np.testing.assert_allclose(session.run(None, {INPUT_NAME: windows.numpy()})[0], expected, atol=1e-4, rtol=1e-4)


def test_cnn6_exports_and_onnxruntime_gives_its_logits(tmp_path: Path):
    import numpy as np
    import onnxruntime as ort
    import torch

    from spira.models.cnn6 import Cnn6
    from spira.serving.contract import INPUT_NAME
    from spira.serving.export import export_onnx

    torch.manual_seed(0)
    net = Cnn6(num_features=64, num_frames=401, base_channels=16)
    with torch.no_grad():  # batch norms with running statistics of their own, as after training
        net.train()(torch.randn(32, 401, 64) * 3 + 1)
    net.eval()
    export_onnx(net, 401, 64, tmp_path / "cnn6.onnx")
    session = ort.InferenceSession(str(tmp_path / "cnn6.onnx"), providers=["CPUExecutionProvider"])
    windows = torch.randn(5, 401, 64)
    with torch.no_grad():
        expected = net(windows).numpy()
    np.testing.assert_allclose(session.run(None, {INPUT_NAME: windows.numpy()})[0], expected, atol=1e-4, rtol=1e-4)
