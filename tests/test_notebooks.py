"""The notebooks run top to bottom, and are committed without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import REPO_ROOT

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def execute_notebook(name: str, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    """Run a notebook of notebooks/ in a fresh kernel (environment plus `env`); return it with outputs."""
    notebook = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return notebook


def printed_text(notebook: nbformat.NotebookNode) -> str:
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS_DIR.glob("*.ipynb")), ids=lambda path: path.name)
def test_notebooks_are_committed_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: strip outputs before committing"


def test_explore_data_notebook_runs_on_a_generated_tiny_cohort():
    notebook = execute_notebook("explore_data.ipynb")
    images = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(images) == 2  # the waveform/spectrogram/MFCC grid and the MFCC profiles
    assert "'speakers': 6" in str([output for cell in notebook.cells for output in cell.get("outputs", [])])
