"""Guarded deletes: run directly, no stage deletes the recordings, the repository or a home."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import run
from spira.config import compose_config
from spira.data.prepare import prepare_dataset
from spira.pipeline.data import prepare_settings
from spira.safety import UnsafeOutputError, check_output_path, replace_folder


def recordings(folder: Path) -> Path:
    (folder / "audio").mkdir(parents=True)
    (folder / "audio" / "rec_0001.wav").write_bytes(b"RIFF recording")
    return folder


@pytest.mark.parametrize(
    "output",
    [".", "..", "/", "~", "recordings", "recordings/../recordings"],
    ids=["repository", "contains-repository", "root", "home", "data.root", "data.root-spelt-otherwise"],
)
def test_outputs_that_overlap_inputs_or_homes_are_refused_and_nothing_is_deleted(tmp_path, monkeypatch, output):
    monkeypatch.chdir(tmp_path)
    root = recordings(tmp_path / "recordings")
    with pytest.raises(UnsafeOutputError, match=r"refusing to delete the prepared data \(.*Nothing was deleted"):
        replace_folder(output, "the prepared data", {"data.root": root})
    assert (root / "audio" / "rec_0001.wav").read_bytes() == b"RIFF recording"


def test_a_folder_of_its_own_is_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = recordings(tmp_path / "recordings")
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "stale.wav").write_bytes(b"old")
    assert replace_folder("data/prepared", "the prepared data", {"data.root": root}) == Path("data/prepared")
    assert list((tmp_path / "data" / "prepared").iterdir()) == []
    check_output_path("data/features", "the features", {"data.root": root, "the prepared data": "data/prepared"})


def test_the_noise_root_is_protected_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    noise = recordings(tmp_path / "noise")
    with pytest.raises(UnsafeOutputError, match=r"the quarantine report \(noise\): it overlaps data.noise_root"):
        check_output_path("noise", "the quarantine report", {"data.noise_root": noise})


def test_prepare_refuses_an_output_folder_holding_the_recordings(tmp_path, monkeypatch):
    data = compose_config(["data.root=data/prepared", "data.noise_root=data/prepared"]).data
    monkeypatch.chdir(tmp_path)
    root = recordings(tmp_path / "data" / "prepared")
    with pytest.raises(UnsafeOutputError, match=r"the prepared data \(data/prepared\): it overlaps data.root"):
        prepare_dataset(prepare_settings(data), Path("data/prepared"), Path("data/quarantine"))
    assert (root / "audio" / "rec_0001.wav").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["prepare", "featurize", "train"])
def test_a_stage_refuses_recordings_inside_a_pipeline_folder_in_one_line(tiny_repo: Path, stage: str):
    root = recordings(tiny_repo / "data" / "prepared")
    params = OmegaConf.load(tiny_repo / "params.yaml")
    params.data.root = "data/prepared"
    OmegaConf.save(params, tiny_repo / "unsafe.yaml")
    result = run([sys.executable, "-m", f"spira.stages.{stage}", "--params", "unsafe.yaml"], tiny_repo, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: data.root=data/prepared: the recordings overlap data/prepared, a folder the pipeline writes (DVC deletes it before a stage runs); "
        "keep recordings outside data/demo, data/prepared, data/quarantine, data/features, models/checkpoints, models/resume, models/export, "
        "eval, metrics, reports. Nothing was run"
    )
    assert "Traceback" not in result.stderr
    assert (root / "audio" / "rec_0001.wav").read_bytes() == b"RIFF recording"
