"""The `slow` tier, enforced: a test without the `slow` marker that runs the pipeline or
trains a model fails, so `make test-fast` (`-m "not slow"`) never waits on one.

Runs the pipeline:
- starts `dvc repro`, `dvc exp run` or `dvc queue start` (whatever their outcome: DVC
  ran or checked stages);
- runs a stage or the training command to completion in a child process
  (`python -m spira.stages.<stage>`, `python -m spira.experiment`, exit status 0; a stage that refuses its
  input at once is a fast test of the refusal);
- uses a fixture that does one of these (`smoke_pipeline`, `tiny_repo`) or builds a
  pipeline repository (`conftest.make_pipeline_repo`).
Trains: calls Lightning's `Trainer.fit` in the test process.
"""

from __future__ import annotations

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

MARKER = "slow"
PIPELINE_FIXTURES = frozenset({"smoke_pipeline", "tiny_repo"})
# Leading words of a command that runs pipeline stages, after the program's name.
PIPELINE_COMMANDS = {
    "dvc": (("repro",), ("exp", "run"), ("queue", "start")),
}
# Modules (`python -m ...`) that run a stage or train when they exit 0.
STAGE_MODULE_PREFIX = "spira.stages."
TRAINING_MODULES = frozenset({"spira.experiment"})
# The Lightning packages whose Trainer.fit counts as training (the project imports `lightning`).
LIGHTNING_TRAINER_MODULES = ("lightning.pytorch", "pytorch_lightning")


class UnmarkedPipelineRun(Exception):
    """An unmarked test ran the pipeline or trained."""


SHELLS = frozenset({"bash", "sh"})


def shell_words(script: str) -> list[str]:
    return script.replace(";", " ").replace("&&", " ").split()


def command_words(args) -> list[str]:
    """The words of a command line: a string (shell=True) and the script of `bash -c` are split
    into words; other arguments (a `python -c` program among them) stay whole."""
    if isinstance(args, (str, bytes, Path)):
        return shell_words(args.decode() if isinstance(args, bytes) else str(args))
    words = [word.decode() if isinstance(word, bytes) else str(word) for word in args]
    if words and Path(words[0]).name in SHELLS and "-c" in words[:-1]:
        script = words.index("-c") + 1
        return [*words[:script], *shell_words(words[script]), *words[script + 1 :]]
    return words


def pipeline_command(args) -> str | None:
    """The command as text when starting it runs the pipeline (`dvc repro`, ...), else None."""
    words = command_words(args)
    for start, word in enumerate(words):
        for leading in PIPELINE_COMMANDS.get(Path(word).name, ()):
            if tuple(words[start + 1 : start + 1 + len(leading)]) == leading:
                return " ".join(words)
    return None


def stage_command(args) -> str | None:
    """The command as text when it runs a stage or trains (counted when it exits 0), else None."""
    words = command_words(args)
    for start, word in enumerate(words):
        following = words[start + 1] if start + 1 < len(words) else ""
        if word == "-m" and (following.startswith(STAGE_MODULE_PREFIX) or following in TRAINING_MODULES):
            return " ".join(words)
    return None


def offence(item: pytest.Item) -> str | None:
    """Why `item` may not use the pipeline fixtures it names, or None."""
    if item.get_closest_marker(MARKER) is not None:
        return None
    used = PIPELINE_FIXTURES & set(getattr(item, "fixturenames", ()))
    if used:
        return f"{item.nodeid} uses {', '.join(sorted(used))} (runs the pipeline) without @pytest.mark.{MARKER}"
    return None


class Guard:
    """While an unmarked test runs, what it may not do raises UnmarkedPipelineRun and is
    recorded (a test that catches the exception still fails)."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self.offences: list[str] = []
        self.stage_processes: list[tuple[subprocess.Popen, str]] = []
        self.installed = False

    def refuse(self, what: str) -> None:
        """Called where the pipeline runs or a model trains: an offence when an unmarked test is running."""
        if self.item is None:
            return
        message = f"{self.item.nodeid} {what} without @pytest.mark.{MARKER}"
        self.offences.append(message)
        raise UnmarkedPipelineRun(message)

    def install(self) -> None:
        """Wrap Popen and Trainer.fit once per process; the wrappers act only while `item` is set."""
        if self.installed:
            return
        self.installed = True
        guard = self
        original_init = subprocess.Popen.__init__

        def guarded_init(process, args, *rest, **kwargs):
            command = pipeline_command(args)
            if command is not None:
                guard.refuse(f"runs the pipeline (`{command}`)")
            original_init(process, args, *rest, **kwargs)
            stage = stage_command(args)
            if stage is not None and guard.item is not None:
                guard.stage_processes.append((process, stage))

        subprocess.Popen.__init__ = guarded_init
        for name in LIGHTNING_TRAINER_MODULES:
            # `lightning` is imported here when installed (a test may import it only while it
            # runs); `pytorch_lightning` only when something already did.
            if name in sys.modules or (name == LIGHTNING_TRAINER_MODULES[0] and importlib.util.find_spec("lightning")):
                self.guard_fit(importlib.import_module(name).Trainer)

    def guard_fit(self, trainer: type) -> None:
        original_fit = trainer.fit
        guard = self

        def guarded_fit(*args, **kwargs):
            guard.refuse("trains a model (Trainer.fit)")
            return original_fit(*args, **kwargs)

        trainer.fit = guarded_fit

    def watch(self, item: pytest.Item):
        """Generator for a hook wrapper: guard one phase of `item` when it is unmarked."""
        if item.get_closest_marker(MARKER) is not None:
            return (yield)
        self.install()
        self.item, self.offences, self.stage_processes = item, [], []
        try:
            result = yield
        finally:
            self.item = None
        for process, command in self.stage_processes:
            if process.returncode == 0:
                self.offences.append(f"{item.nodeid} runs a stage or trains (`{command}`) without @pytest.mark.{MARKER}")
        if self.offences:
            raise UnmarkedPipelineRun(self.offences[0])
        return result


GUARD = Guard()


def refuse_unmarked(what: str) -> None:
    """For helpers that run or build the pipeline: fails the unmarked test calling them."""
    GUARD.refuse(what)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    offences = [message for item in items if (message := offence(item))]
    if offences:
        raise pytest.UsageError("\n".join(offences))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from GUARD.watch(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from GUARD.watch(item))
