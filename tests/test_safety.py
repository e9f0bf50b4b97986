"""Guarded deletes: no configurable output path can delete the recordings, the repository or a home."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import run
from spira.data.prepare import prepare_dataset
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
    with pytest.raises(UnsafeOutputError, match=r"refusing to delete data.out_dir = .*nothing was deleted"):
        replace_folder(output, "data.out_dir", {"data.root": root})
    assert (root / "audio" / "rec_0001.wav").read_bytes() == b"RIFF recording"


def test_a_folder_of_its_own_is_replaced(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = recordings(tmp_path / "recordings")
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "prepared" / "stale.wav").write_bytes(b"old")
    assert replace_folder("data/prepared", "data.out_dir", {"data.root": root}) == Path("data/prepared")
    assert list((tmp_path / "data" / "prepared").iterdir()) == []
    check_output_path("data/features", "features.out_dir", {"data.root": root, "data.out_dir": "data/prepared"})


def test_the_noise_root_is_protected_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    noise = recordings(tmp_path / "noise")
    with pytest.raises(UnsafeOutputError, match=r"data.report_dir = noise: it overlaps data.noise_root"):
        check_output_path("noise", "data.report_dir", {"data.noise_root": noise})


def test_prepare_refuses_an_output_folder_holding_the_recordings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = recordings(tmp_path / "data" / "demo")
    data = OmegaConf.create({"name": "demo", "public_dataset": True, "speaker_id_salt": "spira-demo", "root": "data/demo",
                             "noise_root": "data/demo", "out_dir": "data", "report_dir": "data/quarantine"})
    with pytest.raises(UnsafeOutputError, match="data.out_dir = data: it overlaps data.root"):
        prepare_dataset(data)
    assert (root / "audio" / "rec_0001.wav").is_file()


def test_the_prepare_stage_says_why_in_one_line(tiny_repo: Path):
    root = recordings(tiny_repo / "data" / "demo")
    params = OmegaConf.load(tiny_repo / "params.yaml")
    params.data.out_dir = "data/demo"
    OmegaConf.save(params, tiny_repo / "unsafe.yaml")
    result = run([sys.executable, "-m", "spira.stages.prepare", "--params", "unsafe.yaml"], tiny_repo, check=False)
    assert result.returncode == 1
    assert "refusing to delete data.out_dir = data/demo: it overlaps data.root" in result.stderr
    assert "Traceback" not in result.stderr
    assert (root / "audio" / "rec_0001.wav").read_bytes() == b"RIFF recording"
