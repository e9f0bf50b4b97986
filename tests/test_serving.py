"""From checkpoint to service: the export stage, `spira predict` and `spira serve`,
on one tiny pipeline run (the session's `exported_repo`)."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import onnx
import pandas as pd
import pytest
import soundfile as sf

from conftest import PipelineRun, run
from spira.config import load_params
from spira.data.privacy import resolve_salt, salted_id
from spira.data.validate import decode_and_check
from spira.evaluation.evaluate import predict_windows
from spira.features.store import load_split
from spira.pipeline.data import salt_settings
from spira.pipeline.serving import resolve_model
from spira.serving.card import metrics_table
from spira.serving.contract import file_sha256
from spira.serving.predict import load_predictor
from spira.training.module import SpiraLitModule
from test_feature_parity import MAX_ABS_DIFFERENCE

EXPORT = "models/export"


@pytest.fixture(scope="module")
def exported_repo(smoke_pipeline: PipelineRun) -> Path:
    return smoke_pipeline.repo


def raw_test_files(repo: Path) -> dict[str, Path]:
    """file_id -> the original recording (as the demo cohort wrote it) of every test-split file."""
    params = load_params(repo / "params.yaml")
    salt, _ = resolve_salt(salt_settings(params.data))
    root = repo / params.data.root
    raw = pd.concat(pd.read_csv(root / f"metadata_{name}.csv") for name in ("train", "eval", "test"))
    by_id = {salted_id(path, salt): root / path for path in raw["file_path"]}
    manifest = pd.read_csv(repo / "data/prepared/manifest.csv", dtype={"file_id": str})
    return {file_id: by_id[file_id] for file_id in manifest.loc[manifest["split"] == "test", "file_id"]}


def bad_files(folder: Path) -> dict[str, Path]:
    """reason -> a file predict must refuse with that reason."""
    folder.mkdir(exist_ok=True)
    (folder / "notes.wav").write_text("not audio at all\n")
    sf.write(folder / "silent.wav", np.zeros(32000, dtype=np.float32), 16000)
    sf.write(folder / "short.wav", 0.5 * np.sin(np.arange(4000, dtype=np.float32)), 16000)
    return {
        "not_audio": folder / "notes.wav",
        "silent_audio": folder / "silent.wav",
        "too_short": folder / "short.wav",
        "missing_file": folder / "absent.flac",
    }


@pytest.mark.slow
def test_export_writes_contract_onnx_and_card(exported_repo: Path):
    export = exported_repo / EXPORT
    contract = json.loads((export / "model.json").read_text())
    params = load_params(exported_repo / "params.yaml")
    assert contract["onnx"]["sha256"] == file_sha256(export / "model.onnx")
    assert contract["model"]["version"] == contract["onnx"]["sha256"][:12]
    features = contract["features"]
    for key in ("sample_rate", "window_seconds", "step_seconds", "n_fft", "win_length", "hop_length", "n_mels", "n_mfcc"):
        assert features[key] == params.features[key], key
    assert features["db"]["top_db"] == 80.0
    assert len(contract["normalization"]["mean"]) == len(contract["normalization"]["std"]) == params.features.n_mfcc
    assert contract["class_names"] == ["control", "patient"]
    # The threshold evaluate chose on validation (evaluate.threshold is a rule, `youden`).
    chosen = json.loads((exported_repo / "metrics/test.json").read_text())["threshold"]
    assert contract["decision"]["threshold"] == chosen["threshold"] and chosen["rule"] == params.evaluate.threshold
    margin = params.export.inconclusive_margin
    assert contract["decision"]["inconclusive_band"] == pytest.approx([chosen["threshold"] - margin, chosen["threshold"] + margin])
    assert len(contract["provenance"]["git_commit"]) == 40 and contract["provenance"]["data_version"].endswith(".dir")

    graph = onnx.load(str(export / "model.onnx"))
    assert max(entry.version for entry in graph.opset_import if entry.domain in ("", "ai.onnx")) >= 17
    batch_axis = graph.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_axis.dim_param and not batch_axis.dim_value  # symbolic: any batch size

    card = (export / "MODEL_CARD.md").read_text()
    test_metrics = json.loads((exported_repo / "metrics/test.json").read_text())
    manifest = pd.read_csv(exported_repo / "data/prepared/manifest.csv")
    train = manifest[manifest["split"] == "train"]
    assert "not a diagnosis" in card and "synthetic speech" in card
    assert f"| train | {len(train)} | {train['speaker_id'].nunique()} | {(train['label'] == 0).sum()} | {(train['label'] == 1).sum()} |" in card
    clean, noisy = test_metrics["test_clean"], test_metrics["test_noisy"]
    assert (
        f"| auroc | {clean['auroc']:.3f} [{clean['auroc_ci_low']:.3f}, {clean['auroc_ci_high']:.3f}] "
        f"| {noisy['auroc']:.3f} [{noisy['auroc_ci_low']:.3f}, {noisy['auroc_ci_high']:.3f}] |"
    ) in card
    assert "| metric | test_clean | test_noisy |" in card  # the threshold record is not a test set
    assert f"Threshold {test_metrics['threshold']['threshold']:g} (chosen by the rule {params.evaluate.threshold} on" in card


@pytest.mark.slow
def test_onnx_matches_the_checkpoint_on_the_test_windows(exported_repo: Path):
    module = SpiraLitModule.load_from_checkpoint(str(exported_repo / "models/checkpoints/best.ckpt"), map_location="cpu")
    predictor = load_predictor(exported_repo / EXPORT)
    for split in ("test", "test_noisy"):
        windows, _ = load_split(exported_repo / "data/features", split)
        expected = predict_windows(module, windows, batch_size=7)
        # Batches of another size than the export example: the batch axis is dynamic.
        got = predictor.window_probabilities(np.asarray(windows))
        assert got.shape == expected.shape and len(got) > 1
        assert np.abs(got - expected).max() <= 1e-5
        assert got.std() > 1e-4  # a trained model, not a constant


@pytest.mark.slow
def test_predict_features_match_featurize(exported_repo: Path):
    """Serving and training cut and featurize a recording identically (from the original file)."""
    predictor = load_predictor(exported_repo / EXPORT)
    windows, index = load_split(exported_repo / "data/features", "test")
    files = raw_test_files(exported_repo)
    rates = set()
    for file_id, path in files.items():
        result, samples = decode_and_check(str(path), path.name, predictor.check)
        assert samples is not None, result.message
        rates.add(result.source_rate)
        expected = windows[index.index[index["file_id"] == file_id]]
        # Serving's numpy MFCC against featurize's torch one (float32): rounding only (tests/test_numpy_frontend.py).
        np.testing.assert_allclose(predictor.features(samples), expected, atol=MAX_ABS_DIFFERENCE, rtol=0)
    assert len(files) == index["file_id"].nunique()


@pytest.mark.slow
def test_spira_predict_reproduces_evaluate_and_reports_bad_files(exported_repo: Path, tmp_path: Path):
    files = raw_test_files(exported_repo)
    bad = bad_files(tmp_path / "bad")
    out = tmp_path / "predictions.csv"
    result = run(["spira", "predict", *map(str, files.values()), *map(str, bad.values()), "--format", "csv", "--out", str(out)], exported_repo, check=False)
    assert result.returncode == 1, result.stderr
    assert f"{len(files)} of {len(files) + len(bad)} files scored" in result.stderr
    records = pd.read_csv(out)
    assert len(records) == len(files) + len(bad)  # every input accounted for, in order
    assert list(records["file"]) == [str(path) for path in [*files.values(), *bad.values()]]

    scored = records.iloc[: len(files)].assign(file_id=list(files))
    evaluated = pd.read_csv(exported_repo / "eval/predictions_test_clean.csv", dtype={"file_id": str}).set_index("file_id")
    assert (scored["status"] == "ok").all()
    assert np.abs(scored["probability"].to_numpy() - evaluated.loc[scored["file_id"], "probability"].to_numpy()).max() <= 1e-4
    assert (scored["windows"].to_numpy() == evaluated.loc[scored["file_id"], "windows"].to_numpy()).all()
    contract = json.loads((exported_repo / EXPORT / "model.json").read_text())
    low, high = contract["decision"]["inconclusive_band"]
    expected = np.where(scored["probability"] >= high, "patient", np.where(scored["probability"] < low, "control", "inconclusive"))
    assert list(scored["decision"]) == list(expected)
    assert (scored["model_version"] == contract["model"]["version"]).all()
    assert (scored["seconds"] >= 1.0).all()

    failed = records.iloc[len(files) :]
    assert list(failed["status"]) == ["error"] * len(bad)
    assert list(failed["reason"]) == list(bad)
    assert failed["probability"].isna().all()
    assert all(str(path) in message for path, message in zip(bad.values(), failed["message"]))

    # Nothing readable: exit status 2; JSON lines on standard output.
    none = run(["spira", "predict", str(bad["not_audio"]), str(bad["silent_audio"])], exported_repo, check=False)
    assert none.returncode == 2
    assert [json.loads(line)["reason"] for line in none.stdout.splitlines()] == ["not_audio", "silent_audio"]

@pytest.mark.slow
def test_prediction_needs_neither_torch_nor_the_checkpoint(exported_repo: Path, tmp_path: Path):
    """A copy of the export folder alone scores a file (48 kHz or 44.1 kHz: resampled), and the whole
    serving path (`spira predict`, `spira serve`, `spira models`) imports no training package."""
    export_copy = tmp_path / "export"
    export_copy.mkdir()
    for name in ("model.onnx", "model.json"):
        (export_copy / name).write_bytes((exported_repo / EXPORT / name).read_bytes())
    audio = next(path for path in raw_test_files(exported_repo).values() if sf.info(path).samplerate != 16000)
    training = ("torch", "torchaudio", "lightning", "pytorch_lightning", "hydra", "omegaconf", "dvc", "scipy", "pandas")
    script = (
        "import sys; import spira.cli, spira.serving.service; from spira.pipeline.serving import predict_files; "
        f"record = predict_files({str(export_copy)!r}, [{str(audio)!r}])[0]; "
        f"print(record['status'], record['windows'] > 0, sorted(m for m in sys.modules if m.split('.')[0] in {training!r}))"
    )
    assert run([sys.executable, "-c", script], tmp_path).stdout.split() == ["ok", "True", "[]"]
    # A changed ONNX file no longer matches the contract's hash.
    (export_copy / "model.onnx").write_bytes((export_copy / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(ValueError, match="sha256 differs"):
        resolve_model(str(export_copy))

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_answer(server: subprocess.Popen, url: str) -> httpx.Response:
    """GET `url` from a starting `spira serve` once it answers (up to 60 s); fails if the server exits."""
    for _ in range(120):
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
    raise AssertionError(f"spira serve did not answer {url} within 60 s")


@pytest.mark.slow
def test_spira_serve_over_http(exported_repo: Path, tmp_path: Path):
    files = raw_test_files(exported_repo)
    first = next(iter(files.values()))
    answered = run(["spira", "predict", str(first)], exported_repo)
    assert answered.returncode == 0
    expected = json.loads(answered.stdout)
    bad = bad_files(tmp_path / "bad")
    uploads_tmp = tmp_path / "tmp"
    uploads_tmp.mkdir()
    port = free_port()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(uploads_tmp)}
    server = subprocess.Popen(
        ["spira", "serve", "--port", str(port), "--max-upload-mb", "4"],
        cwd=exported_repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        health = first_answer(server, f"{base}/health")
        contract = json.loads((exported_repo / EXPORT / "model.json").read_text())
        assert health.json() == {"status": "ok", "model_version": contract["model"]["version"]}
        assert httpx.get(f"{base}/model", timeout=10).json() == contract

        # An identifying upload name must never reach the logs.
        name = "P0042-maria-silva" + first.suffix
        answer = httpx.post(f"{base}/predict", files={"file": (name, first.read_bytes())}, timeout=60)
        assert answer.status_code == 200
        record = answer.json()
        assert record["probability"] == pytest.approx(expected["probability"], abs=1e-6)
        assert {key: record[key] for key in ("decision", "windows", "seconds", "model_version")} == {
            key: expected[key] for key in ("decision", "windows", "seconds", "model_version")
        }

        for reason in ("not_audio", "silent_audio", "too_short"):
            refused = httpx.post(f"{base}/predict", files={"file": (bad[reason].name, bad[reason].read_bytes())}, timeout=60)
            assert refused.status_code == 422 and refused.json()["reason"] == reason
        assert httpx.post(f"{base}/predict", files={"other": ("x.wav", b"RIFF")}, timeout=10).status_code == 400
        too_big = httpx.post(f"{base}/predict", files={"file": ("big.wav", io.BytesIO(bytes(5 * 1024 * 1024)))}, timeout=10)
        assert too_big.status_code == 413
        # No upload left on disk (onnxruntime keeps a 51-byte session counter, `.ses`, there).
        assert [path.name for path in uploads_tmp.rglob("*") if path.name != ".ses"] == []
    finally:
        server.terminate()
        log = server.communicate(timeout=30)[0]
    assert "Uvicorn running" in log or "Application startup complete" in log
    assert "P0042" not in log and "maria" not in log


def test_model_card_shows_intervals_when_the_evaluation_gives_them():
    rows = metrics_table({"test_clean": {"auroc": 0.8125, "auroc_ci_low": 0.61, "auroc_ci_high": 0.95, "n_files": 40}, "test_noisy": {"auroc": 0.7}})
    assert rows[2:] == ["| auroc | 0.812 [0.610, 0.950] | 0.700 |", "| n_files | 40 | – |"]
