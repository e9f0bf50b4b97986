"""`evaluate.calibration=temperature` through evaluate, the gate, export, `spira predict` and
`spira serve`: one calibrated probability and one decision everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from conftest import PipelineRun, committed_copy, run
from test_serving import EXPORT, first_answer, free_port, raw_test_files
from spira.serving.contract import SCHEMA_VERSION

pytestmark = pytest.mark.slow
POINT_FIGURES = ("auroc", "accuracy", "sensitivity", "specificity", "n_files")


def test_a_temperature_calibrated_model_decides_alike_from_evaluate_to_serve(smoke_pipeline: PipelineRun, tmp_path: Path):
    repo = committed_copy(smoke_pipeline.repo, tmp_path / "repo")
    uncalibrated = json.loads((repo / "metrics/test.json").read_text())
    run(["dvc", "exp", "run", "-S", "evaluate.calibration=temperature"], repo)

    tested = json.loads((repo / "metrics/test.json").read_text())
    temperature = tested["threshold"]["temperature"]
    assert tested["threshold"]["calibration"] == "temperature" and temperature > 0 and abs(temperature - 1) > 1e-3
    # Temperature scaling keeps the order of the files: the same AUROC, other probabilities.
    assert tested["test_clean"]["auroc"] == uncalibrated["test_clean"]["auroc"]
    evaluated = pd.read_csv(repo / "eval/predictions_test_clean.csv", dtype={"file_id": str}).set_index("file_id")
    before = pd.read_csv(smoke_pipeline.repo / "eval/predictions_test_clean.csv", dtype={"file_id": str}).set_index("file_id")
    logit = np.log(before["probability"] / (1 - before["probability"]))
    np.testing.assert_allclose(evaluated["probability"], 1 / (1 + np.exp(-logit / temperature)), atol=2e-6)

    # The gate judges the model as evaluate scored it.
    gate = json.loads((repo / "metrics/gate.json").read_text())
    assert gate["threshold"] == tested["threshold"]["threshold"]
    assert {name: gate["challenger"]["test_clean"][name] for name in POINT_FIGURES} == {name: tested["test_clean"][name] for name in POINT_FIGURES}

    # The export carries the temperature; `spira predict` gives evaluate's probabilities and decisions.
    contract = json.loads((repo / EXPORT / "model.json").read_text())
    assert contract["schema_version"] == SCHEMA_VERSION and contract["decision"]["temperature"] == temperature
    files = raw_test_files(repo)
    predicted = run(["spira", "predict", *map(str, files.values()), "--format", "csv", "--out", str(tmp_path / "predicted.csv")], repo)
    assert predicted.returncode == 0
    records = pd.read_csv(tmp_path / "predicted.csv").assign(file_id=list(files)).set_index("file_id")
    assert np.abs(records["probability"] - evaluated.loc[records.index, "probability"]).max() <= 1e-4
    low, high = contract["decision"]["inconclusive_band"]
    calibrated = evaluated.loc[records.index, "probability"]
    expected = np.where(calibrated >= high, "patient", np.where(calibrated < low, "control", "inconclusive"))
    assert list(records["decision"]) == list(expected)

    # `spira serve` answers with the same calibrated probability.
    file_id, audio = next(iter(files.items()))
    port = free_port()
    env = os.environ | {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    server = subprocess.Popen(["spira", "serve", "--port", str(port)], cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        first_answer(server, f"http://127.0.0.1:{port}/health")
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", files={"file": (audio.name, audio.read_bytes())}, timeout=60).json()
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer["probability"] == records.loc[file_id, "probability"] and answer["decision"] == records.loc[file_id, "decision"]
