"""The scheduled CT workflow cannot run here: its YAML, triggers and every command it calls are checked instead."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = REPO_ROOT / ".github/workflows/ct.yml"
# Commands a step's action installs on the runner, by the action that installs them.
ACTION_TOOLS = {"cml": "iterative/setup-cml"}
SHELL_WORDS = {"git", "grep", "echo", "date", "test"}


def commands(script: str) -> list[list[str]]:
    """Each simple command of a `run:` script (split on newlines, &&, ||, ;)."""
    return [shlex.split(part) for part in re.split(r"\n|&&|\|\||;", script) if part.strip()]


def make_targets() -> set[str]:
    return set(re.findall(r"^([a-z][\w-]*):", (REPO_ROOT / "Makefile").read_text(), flags=re.M))


def test_workflow_runs_on_a_schedule_and_on_data_pointer_pushes():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["schedule"][0]["cron"] == "0 3 * * 1"
    assert "**.dvc" in triggers["push"]["paths"] and triggers["push"]["branches"] == ["main"]
    steps = workflow["jobs"]["ct"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout") and steps[0]["with"]["fetch-depth"] == 0
    runs = [step["run"] for step in steps if "run" in step]
    assert "make ct" in runs and any("cml comment create" in run and "reports/gate.md" in run for run in runs)


def test_every_command_the_workflow_calls_exists():
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["ct"]["steps"]
    used_actions = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    targets = make_targets()
    venv_bin = Path(sys.executable).parent
    checked = 0
    for step in steps:
        for words in commands(step.get("run", "")):
            name = words[0]
            if name == "make":
                assert set(words[1:]) <= targets, words
                assert subprocess.run(["make", "-n", *words[1:]], cwd=REPO_ROOT, capture_output=True).returncode == 0, words
            elif name.startswith(".venv/bin/"):
                tool = venv_bin / Path(name).name
                assert tool.exists(), name
                help_text = subprocess.run([str(tool), *words[1:2], "--help"], capture_output=True, text=True).stdout
                assert all(option.split("=")[0] in help_text for option in words[2:] if option.startswith("--")), words
            elif name in ACTION_TOOLS:
                assert ACTION_TOOLS[name] in used_actions, f"{name} needs the {ACTION_TOOLS[name]} step"
            else:
                assert name in SHELL_WORDS and shutil.which(name), words
            checked += 1
    assert checked >= 6


def test_make_ct_runs_repro_promote_and_push_in_that_order():
    dry = subprocess.run(["make", "-n", "ct"], cwd=REPO_ROOT, capture_output=True, text=True).stdout
    order = [dry.index(word) for word in ("spira params", "dvc repro", "git commit", "spira promote", "dvc push")]
    assert order == sorted(order)
