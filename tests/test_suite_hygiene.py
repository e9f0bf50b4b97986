"""The suite itself: every test runs under a time limit, so a hung stage fails instead of stalling CI,
and the tier guard (tests/tier_guard.py) fails an unmarked test that runs the pipeline or trains."""

import os
import re
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def test_every_test_has_a_default_timeout(pytestconfig):
    assert 600 <= float(pytestconfig.getini("timeout")) <= 900


# Planted offenders, run in a pytest of their own with the suite's tier guard. `dvc` there is a
# script that only exits 0: the guard must stop the test before anything starts, not the program.
PLANTED_CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
from tier_guard import pytest_collection_modifyitems, pytest_runtest_call, pytest_runtest_setup, refuse_unmarked
import pytest

@pytest.fixture(scope="session")
def smoke_pipeline():
    return None

def make_pipeline_repo():
    refuse_unmarked("builds a pipeline repository (make_pipeline_repo)")
"""

PLANTED_TESTS = """
import subprocess
import sys

import lightning as L
import pytest
import torch

from conftest import make_pipeline_repo


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(1, 1)

    def training_step(self, batch, index):
        return self.layer(batch).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_repro_unmarked():
    subprocess.run(["dvc", "repro"], check=True)

def test_exp_run_in_a_shell_unmarked():
    subprocess.run("true && dvc exp run -S model.dropout=0.5", shell=True, check=True)

def test_repro_caught_unmarked():
    try:
        subprocess.run(["dvc", "repro"])
    except Exception:
        pass

def test_stage_unmarked():
    subprocess.run([sys.executable, "-m", "spira.stages.generate_demo", "--help"], check=True, capture_output=True)

def test_stage_refusal_unmarked(tmp_path):
    refused = subprocess.run([sys.executable, "-m", "spira.stages.generate_demo"], cwd=tmp_path, capture_output=True)
    assert refused.returncode == 1

def test_fit_unmarked():
    L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False).fit(Tiny(), torch.utils.data.DataLoader(torch.ones(2, 1)))

def test_pipeline_repo_unmarked():
    make_pipeline_repo()

@pytest.mark.slow
def test_repro_marked():
    subprocess.run(["dvc", "repro"], check=True)

@pytest.mark.slow
def test_fit_marked():
    L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False).fit(
        Tiny(), torch.utils.data.DataLoader(torch.ones(2, 1)))

def test_bash_script_unmarked():
    subprocess.run(["bash", "-c", "set -e; dvc queue start -j 1"], check=True)

def test_plain_unmarked():
    subprocess.run(["dvc", "status"], check=True)

def test_python_program_naming_the_pipeline_unmarked():
    subprocess.run([sys.executable, "-c", "print('dvc repro; python -m spira.stages.prepare')"], check=True)
"""


def test_the_tier_guard_fails_each_planted_offender_and_passes_marked_and_plain_tests(pytester: pytest.Pytester, monkeypatch):
    pytester.makeconftest(PLANTED_CONFTEST)
    pytester.makepyfile(test_planted=PLANTED_TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    slow: runs the pipeline or trains\n")
    fake_dvc = pytester.path / "bin" / "dvc"
    fake_dvc.parent.mkdir()
    fake_dvc.write_text("#!/bin/sh\nexit 0\n")
    fake_dvc.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_dvc.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist", "-rA")

    outcomes = {name: outcome for outcome, name in re.findall(r"^(PASSED|FAILED|ERROR) test_planted.py::(\w+)", result.stdout.str(), re.M)}
    assert outcomes == {
        "test_repro_unmarked": "FAILED",
        "test_exp_run_in_a_shell_unmarked": "FAILED",
        "test_repro_caught_unmarked": "FAILED",
        "test_stage_unmarked": "FAILED",
        "test_stage_refusal_unmarked": "PASSED",
        "test_fit_unmarked": "FAILED",
        "test_pipeline_repo_unmarked": "FAILED",
        "test_repro_marked": "PASSED",
        "test_fit_marked": "PASSED",
        "test_bash_script_unmarked": "FAILED",
        "test_plain_unmarked": "PASSED",
        "test_python_program_naming_the_pipeline_unmarked": "PASSED",
    }
    output = result.stdout.str()
    assert "test_repro_unmarked runs the pipeline (`dvc repro`) without @pytest.mark.slow" in output
    assert "test_exp_run_in_a_shell_unmarked runs the pipeline (`true dvc exp run -S model.dropout=0.5`)" in output
    assert "test_repro_caught_unmarked runs the pipeline (`dvc repro`)" in output
    assert "test_bash_script_unmarked runs the pipeline (`bash -c set -e dvc queue start -j 1`)" in output
    assert "test_stage_unmarked runs a stage or trains (`" in output
    assert "test_fit_unmarked trains a model (Trainer.fit) without @pytest.mark.slow" in output
    assert "test_pipeline_repo_unmarked builds a pipeline repository (make_pipeline_repo) without @pytest.mark.slow" in output


def test_an_unmarked_test_using_the_smoke_pipeline_fixture_stops_the_collection(pytester: pytest.Pytester):
    pytester.makeconftest(PLANTED_CONFTEST)
    pytester.makepyfile(test_planted="def test_reads_the_smoke_run(smoke_pipeline):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_planted.py::test_reads_the_smoke_run uses smoke_pipeline (runs the pipeline) without @pytest.mark.slow" in result.stderr.str()
