"""The `slow` tier, enforced: a test without the `slow` marker that runs the pipeline or
trains a model fails, so `make test-fast` (`-m "not slow"`) never waits on one.

Runs the pipeline: starts `dvc repro`, `dvc exp run` or `dvc queue start`, or uses the
`smoke_pipeline` fixture (one shared `dvc repro`).
Trains: calls Lightning's `Trainer.fit` in the test process. Commands a child process
starts are out of reach; the checked entry points are the ones tests call directly.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

MARKER = "slow"
PIPELINE_FIXTURES = frozenset({"smoke_pipeline"})
# Leading words of a command that runs pipeline stages, after the program's name.
PIPELINE_COMMANDS = {
    "dvc": (("repro",), ("exp", "run"), ("queue", "start")),
}


class UnmarkedPipelineRun(Exception):
    """An unmarked test ran the pipeline or trained."""


def pipeline_command(args) -> str | None:
    """The command as text when it runs the pipeline, else None."""
    if isinstance(args, (str, bytes, Path)):
        words = str(args).split()
    else:
        words = [str(word) for word in args]
    # `bash -c "...; dvc repro"` and the like: look at every word sequence.
    words = [piece for word in words for piece in word.replace(";", " ").replace("&&", " ").split()]
    for start, word in enumerate(words):
        for leading in PIPELINE_COMMANDS.get(Path(word).name, ()):
            if tuple(words[start + 1 : start + 1 + len(leading)]) == leading:
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


@contextmanager
def forbid_pipeline(item: pytest.Item, offences: list[str]):
    """While `item` runs (unmarked), a pipeline command or `Trainer.fit` raises
    UnmarkedPipelineRun and is recorded in `offences` (a test catching it still fails)."""
    if item.get_closest_marker(MARKER) is not None:
        yield
        return
    original_init = subprocess.Popen.__init__

    def refuse(message: str):
        offences.append(message)
        raise UnmarkedPipelineRun(message)

    def guarded_init(self, args, *rest, **kwargs):
        command = pipeline_command(args)
        if command is not None:
            refuse(f"{item.nodeid} runs the pipeline (`{command}`) without @pytest.mark.{MARKER}")
        original_init(self, args, *rest, **kwargs)

    trainers = [module.Trainer for name in ("lightning", "pytorch_lightning") if (module := sys.modules.get(name)) is not None]
    original_fits = [(trainer, trainer.fit) for trainer in trainers]

    def guarded_fit(*args, **kwargs):
        refuse(f"{item.nodeid} trains a model (Trainer.fit) without @pytest.mark.{MARKER}")

    subprocess.Popen.__init__ = guarded_init
    for trainer, _ in original_fits:
        trainer.fit = guarded_fit
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original_init
        for trainer, fit in original_fits:
            trainer.fit = fit


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    offences = [message for item in items if (message := offence(item))]
    if offences:
        raise pytest.UsageError("\n".join(offences))


def guarded_phase(item: pytest.Item):
    offences: list[str] = []
    with forbid_pipeline(item, offences):
        result = yield
    if offences:
        raise UnmarkedPipelineRun(offences[0])
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    return (yield from guarded_phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    return (yield from guarded_phase(item))
