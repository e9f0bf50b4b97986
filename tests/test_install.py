"""A non-editable install (a wheel in a scratch venv) finds the project's configs from the working directory."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow

NO_PROJECT = "no SPIRA project (dvc.yaml and conf/) at or above"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A scratch venv holding the built wheel of spira; its other dependencies come from the running venv."""
    root = tmp_path_factory.mktemp("install")
    wheels = root / "wheels"
    # Built from a copy: setuptools writes build/ and an egg-info into the tree it builds.
    source = root / "source"
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)], check=True)
    (wheel,) = wheels.glob("spira*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True, capture_output=True, text=True).stdout.strip())
    # A .pth line adds the running venv's packages but not its editable spira (that needs its own .pth processed).
    (site / "running_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # `pip --python` installs as the scratch interpreter would, so the `spira` script runs the scratch venv.
    # --ignore-installed: through the .pth pip sees the running venv's editable spira of the same version
    # and would skip the wheel; this installs it without touching (uninstalling) that one.
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--ignore-installed", str(wheel)], check=True)
    return venv


def run_in(venv: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(cwd)}
    return subprocess.run([str(venv / "bin" / "python"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def make_project(folder: Path) -> Path:
    shutil.copytree(REPO_ROOT / "conf", folder / "conf")
    shutil.copy2(REPO_ROOT / "dvc.yaml", folder / "dvc.yaml")
    (folder / "sub" / "deeper").mkdir(parents=True)
    return folder


def test_the_wheel_is_the_spira_imported(installed, tmp_path):
    found = run_in(installed, tmp_path, "-c", "import spira; print(spira.__file__)")
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()).is_relative_to(installed), found.stdout


def test_params_from_the_project_and_a_subfolder_equal_the_checkouts(installed, tmp_path):
    project = make_project(tmp_path / "project")
    for cwd in (project, project / "sub" / "deeper"):
        out = tmp_path / f"params-{cwd.name}.yaml"
        composed = run_in(installed, cwd, "-m", "spira.cli", "params", "--output", str(out))
        assert composed.returncode == 0, composed.stderr
        assert out.read_text() == (REPO_ROOT / "params.yaml").read_text()


def test_outside_a_project_params_fails_in_one_line_and_help_works(installed, tmp_path):
    outside = tmp_path / "nowhere"
    outside.mkdir()
    refused = run_in(installed, outside, "-m", "spira.cli", "params", "--output", str(outside / "p.yaml"))
    assert refused.returncode == 1
    assert refused.stderr.strip().count("\n") == 0 and NO_PROJECT in refused.stderr and str(outside) in refused.stderr
    assert not (outside / "p.yaml").exists()
    helped = run_in(installed, outside, "-m", "spira.cli", "--help")
    assert helped.returncode == 0 and "params" in helped.stdout
    script = subprocess.run([str(installed / "bin" / "spira"), "--help"], cwd=outside, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True)
    assert script.returncode == 0 and "params" in script.stdout, script.stderr


def test_a_stage_runs_from_the_installed_package(installed, tmp_path):
    project = make_project(tmp_path / "project")
    composed = run_in(installed, project, "-m", "spira.cli", "params", "experiment=smoke")
    assert composed.returncode == 0, composed.stderr
    generated = run_in(installed, project, "-m", "spira.stages.generate_demo")
    assert generated.returncode == 0, generated.stderr
    assert "'speakers': 16" in generated.stdout + generated.stderr
    audio = project / "data" / "demo" / "audio"
    assert len([*audio.glob("*.wav"), *audio.glob("*.flac")]) == 32  # 16 speakers x 2 utterances
