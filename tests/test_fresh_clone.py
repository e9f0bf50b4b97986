"""A fresh clone reaches a served `prod` model with exactly the commands README's first screen gives.

The clone's `.venv` is this test run's environment, entry by entry (symlinks), with the
clone's own install stamp: `make` and every make it starts find the install done and never
install into the shared environment. Every step is the README's line as written, with a
free port in place of 8000.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, run
from test_serving import first_answer, free_port

pytestmark = pytest.mark.slow
INTRO = "From a fresh clone to a served `prod` model"


def readme_commands() -> list[str]:
    """The lines of the fenced block after INTRO in README.md, comments dropped."""
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(re.escape(INTRO) + r".*?```bash\n(?P<body>.*?)```", readme, re.S)
    assert block, f"README.md has no command block after {INTRO!r}"
    return [line.split("  #")[0].strip() for line in block.group("body").splitlines() if line.strip()]


def test_the_readme_lines_run_from_a_fresh_clone_to_a_served_prod_model(tmp_path: Path):
    commands = readme_commands()
    assert [command.split()[:2] for command in commands] == [["make", "repro"], ["make", "promote"], ["spira", "serve"], ["curl", "-s"], ["spira", "predict"]]
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], tmp_path)
    run(["git", "config", "user.name", "newcomer"], clone)
    run(["git", "config", "user.email", "newcomer@example.org"], clone)
    venv = clone / ".venv"
    venv.mkdir()
    for entry in Path(sys.prefix).iterdir():
        if entry.name != ".installed":
            (venv / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (venv / ".installed").touch()  # newer than the clone's pyproject.toml and lock
    env = {**os.environ, "PATH": f"{Path(sys.prefix) / 'bin'}{os.pathsep}{os.environ['PATH']}", "WANDB_MODE": "offline"}
    env.pop("SPIRA_PROJECT", None)
    port = str(free_port())

    def line(number: int) -> list[str]:
        return shlex.split(commands[number].replace("8000", port))

    for number in (0, 1):
        made = subprocess.run(line(number), cwd=clone, env=env, capture_output=True, text=True, timeout=1500)
        assert made.returncode == 0, made.stdout + made.stderr
        assert "pip install" not in made.stdout, made.stdout
    gate = json.loads((clone / "metrics/gate.json").read_text())
    assert gate["decision"] == "pass", gate["rules"]
    models = subprocess.run(["spira", "models"], cwd=clone, env=env, check=True, capture_output=True, text=True).stdout
    assert re.search(r"v1\.0\.0\s+prod", models), models

    expected_version = json.loads((clone / "models/export/model.json").read_text())["model"]["version"]
    server = subprocess.Popen(line(2), cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        health = first_answer(server, f"http://127.0.0.1:{port}/health").json()
        assert health == {"status": "ok", "model_version": expected_version}
        answered = json.loads(subprocess.run(line(3), cwd=clone, env=env, check=True, capture_output=True, text=True).stdout)
        assert answered["status"] == "ok" and answered["model_version"] == expected_version
    finally:
        server.terminate()
        server.wait(timeout=30)
    predicted = json.loads(subprocess.run(line(4), cwd=clone, env=env, check=True, capture_output=True, text=True).stdout)
    assert predicted["model_version"] == expected_version and predicted["probability"] == answered["probability"]
