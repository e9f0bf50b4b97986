"""Every model family through the same pipeline: `dvc exp run -S model=<name>` trains, evaluates,
gates and exports it, and `spira predict` on the export gives evaluate's probabilities."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from conftest import PipelineRun, committed_copy, run
from test_serving import EXPORT, raw_test_files

pytestmark = pytest.mark.slow

# model option -> (network class in model.json, trainable parameters, features option, epochs the smoke
# run trains). The default, spira_conv_v2 on mfcc, is the smoke pipeline itself (tests/test_pipeline_e2e.py).
MODELS = {
    "mfcc_transformer": ("MfccTransformer", 77_441, "mfcc", 2),  # 40 MFCCs, 401 frames
    "cnn6_small": ("Cnn6", 286_449, "logmel", 2),  # 64 log-mel bands
    "egemaps_logreg": ("LogisticRegression", 89, "egemaps", 0),  # 88 functionals + bias, fitted by scikit-learn
}


@pytest.mark.parametrize("option", sorted(MODELS))
def test_a_model_runs_through_the_pipeline_and_its_export_predicts_like_evaluate(option: str, smoke_pipeline: PipelineRun, tmp_path: Path):
    name, parameters, features, epochs = MODELS[option]
    repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    run(["dvc", "exp", "run", "-S", f"model={option}", "-S", f"features={features}"], repo)

    trained = json.loads((repo / "metrics/train.json").read_text())
    assert trained["parameters"] == parameters and trained["epochs_run"] == epochs
    tested = json.loads((repo / "metrics/test.json").read_text())
    assert 0 <= tested["test_clean"]["auroc"] <= 1 and tested["test_clean"]["n_files"] == smoke_pipeline_test_files(repo)
    # The gate scored this model (its figures are evaluate's), whatever it then decided.
    assert json.loads((repo / "metrics/gate.json").read_text())["challenger"]["test_clean"]["auroc"] == tested["test_clean"]["auroc"]
    contract = json.loads((repo / EXPORT / "model.json").read_text())
    assert contract["model"]["name"] == name and f"`{name}`" in (repo / EXPORT / "MODEL_CARD.md").read_text()
    assert contract["features"]["name"] == features

    files = raw_test_files(repo)
    out = tmp_path / "predicted.csv"
    run(["spira", "predict", *map(str, files.values()), "--format", "csv", "--out", str(out)], repo)
    records = pd.read_csv(out).assign(file_id=list(files)).set_index("file_id")
    evaluated = pd.read_csv(repo / "eval/predictions_test_clean.csv", dtype={"file_id": str}).set_index("file_id")
    assert (records["status"] == "ok").all()
    assert np.abs(records["probability"] - evaluated.loc[records.index, "probability"]).max() <= 1e-4

    # A real MP3 (a test recording encoded by libsndfile's LAME): decoded and scored by this model.
    source = next(iter(files.values()))
    samples, rate = sf.read(source, dtype="float32")
    sf.write(tmp_path / "recording.mp3", samples, rate, format="MP3")
    scored = run(["spira", "predict", str(tmp_path / "recording.mp3")], repo)
    record = json.loads(scored.stdout.splitlines()[0])
    assert record["status"] == "ok" and record["model_version"] == contract["model"]["version"]
    assert 0.0 <= record["probability"] <= 1.0 and abs(record["seconds"] - len(samples) / rate) < 0.2

    # `spira serve`'s app on the same export answers the upload with predict's record.
    from fastapi.testclient import TestClient

    from spira.serving.predict import load_predictor
    from spira.serving.service import create_app

    with TestClient(create_app(load_predictor(repo / EXPORT))) as client:
        assert client.get("/model").json()["model"]["name"] == name
        with open(tmp_path / "recording.mp3", "rb") as upload:
            served = client.post("/predict", files={"file": ("recording.mp3", upload, "audio/mpeg")})
    assert served.status_code == 200 and served.json()["probability"] == record["probability"]


def smoke_pipeline_test_files(repo: Path) -> int:
    manifest = pd.read_csv(repo / "data/prepared/manifest.csv")
    return int((manifest["split"] == "test").sum())


def test_an_unsupported_pair_stops_dvc_exp_run_before_any_stage(smoke_pipeline: PipelineRun, tmp_path: Path):
    repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    before = (repo / "dvc.lock").read_text()
    result = run(["dvc", "exp", "run", "-S", "model=cnn6"], repo, check=False)
    assert result.returncode != 0
    # Hydra's message: the missing pair, then the supported ones (conf/model_features/).
    assert "Could not find 'model_features/cnn6_mfcc'" in result.stderr and "cnn6_logmel" in result.stderr
    assert "Running stage" not in result.stdout + result.stderr and (repo / "dvc.lock").read_text() == before
