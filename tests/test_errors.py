"""One mapping from a user error to one line and an exit status, for every DVC stage and every `spira` subcommand."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, run
from spira.cli import build_parser, main
from spira.errors import EXIT_REFUSED, EXIT_USAGE, UserError, exit_on_user_error

STAGES = sorted(path.stem for path in (REPO_ROOT / "src" / "spira" / "stages").glob("*.py") if not path.stem.startswith("_"))
UNSAFE_LINE = "error: data.root=data/prepared: the recordings overlap data/prepared, a folder the pipeline writes"


def test_every_dvc_stage_is_covered():
    assert STAGES == sorted(yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"])


@pytest.mark.parametrize("stage", STAGES)
def test_a_stage_ends_a_user_error_with_one_line_and_status_1(tmp_path: Path, stage: str):
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    params["data"]["root"] = "data/prepared"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run([sys.executable, "-m", f"spira.stages.{stage}"], tmp_path, check=False)
    assert result.returncode == EXIT_REFUSED, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(UNSAFE_LINE), result.stderr


# Subcommand -> arguments that refuse in a folder with params.yaml and nothing else, the line's start, the status.
REFUSALS = {
    "params": (["data.root=data/prepared", "--output", "composed.yaml"], "data.root=data/prepared: the recordings overlap", EXIT_REFUSED),
    "calibrate-noise": ([], "data/prepared: no prepared data; run `dvc repro prepare` first", EXIT_REFUSED),
    "predict": (["a.wav", "--model", "nowhere"], "nowhere: no such export folder", EXIT_USAGE),
    "serve": (["--model", "nowhere"], "nowhere: no such export folder", EXIT_USAGE),
    "promote": ([], "git for-each-ref", EXIT_REFUSED),
    "rollback": (["--reason", "a test"], "git for-each-ref", EXIT_REFUSED),
    "models": ([], "git for-each-ref", EXIT_REFUSED),
    "verify": ([], "reading HEAD failed", EXIT_REFUSED),
}


def test_every_subcommand_is_covered():
    subcommands = next(action for action in build_parser()._actions if action.dest == "command").choices
    assert sorted(subcommands) == sorted(REFUSALS)


@pytest.mark.parametrize("command", sorted(REFUSALS))
def test_a_subcommand_ends_a_user_error_with_one_line_and_its_status(tmp_path: Path, monkeypatch, capsys, command: str):
    arguments, start, status = REFUSALS[command]
    shutil.copy(REPO_ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIRA_PROJECT", str(REPO_ROOT))  # the checkout's conf/, from a folder outside it
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # tmp_path is no repository
    with pytest.raises(SystemExit) as exit_info:
        main([command, *arguments])
    assert exit_info.value.code == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: spira {command}: {start}"), lines
    assert not (tmp_path / "composed.yaml").exists()


def test_an_override_hydra_cannot_apply_is_a_usage_error_in_one_line(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPIRA_PROJECT", str(REPO_ROOT))
    with pytest.raises(SystemExit) as exit_info:
        main(["params", "data.no_such_key=1", "--output", "composed.yaml"])
    assert exit_info.value.code == EXIT_USAGE
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: spira params: Could not override 'data.no_such_key'."), lines
    assert not (tmp_path / "composed.yaml").exists()


def test_a_usage_error_is_status_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict"])
    assert exit_info.value.code == EXIT_USAGE
    assert "the following arguments are required: AUDIO" in capsys.readouterr().err


def test_a_message_of_several_lines_becomes_one_and_other_errors_keep_their_traceback(capsys):
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error("spira x: "):
        raise UserError("reading HEAD failed:\nfatal: not a git repository\n")
    assert exit_info.value.code == EXIT_REFUSED
    assert capsys.readouterr().err == "error: spira x: reading HEAD failed:; fatal: not a git repository\n"
    with pytest.raises(KeyError), exit_on_user_error():
        raise KeyError("a bug")
    with pytest.raises(SystemExit) as exit_info, exit_on_user_error(status=EXIT_USAGE, also=(FileNotFoundError,)):
        raise FileNotFoundError("model.json: missing")
    assert exit_info.value.code == EXIT_USAGE and capsys.readouterr().err == "error: model.json: missing\n"
