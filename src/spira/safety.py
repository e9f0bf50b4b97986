"""Safe outputs: guarded deletes and atomic writes.

Output paths are configurable (`-S data.out_dir=...`), and a stage replaces
its output folder; one typo must not delete the recordings, the repository or
a home folder (`check_output_path`). And a stage killed or failing half-way
must leave no half-written file or folder under an output's name: files are
written to a temporary name beside them and renamed (`atomic_file`), folders
built in a temporary sibling and swapped in (`staged_folder`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class UnsafeOutputError(ValueError):
    """An output path that would delete inputs or a folder nobody means to replace."""


def protected_folders() -> dict[str, Path]:
    """Folders no output may equal or contain: the repository (also DVC_ROOT from the DVC queue), home and /."""
    folders = {"the repository root": Path.cwd(), "the home folder": Path.home(), "the file system root": Path("/")}
    if os.environ.get("DVC_ROOT"):
        folders["the repository root (DVC_ROOT)"] = Path(os.environ["DVC_ROOT"])
    return folders


def check_output_path(path: str | Path, name: str, inputs: dict[str, str | Path]) -> None:
    """Raise UnsafeOutputError when output `path` (named `name`) equals or contains a protected
    folder or one of the stage's `inputs` (name -> folder)."""
    target = Path(path).expanduser().resolve()
    for label, folder in {**protected_folders(), **inputs}.items():
        folder = Path(folder).expanduser().resolve()
        if target == folder or target in folder.parents:
            raise UnsafeOutputError(
                f"refusing to delete {name} = {path}: it overlaps {label} ({folder}). "
                f"Set {name} to a folder of its own (nothing was deleted)."
            )


def replace_folder(path: str | Path, name: str, inputs: dict[str, str | Path]) -> Path:
    """Delete output folder `path` (after check_output_path) and create it empty; returns it."""
    check_output_path(path, name, inputs)
    path = Path(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def partial_name(path: Path) -> Path:
    """The temporary sibling `path` is built under (hidden; named by the process that builds it)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def sync_folder(folder: Path) -> None:
    """Make a rename inside `folder` durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write; when the block ends, the file is
    fsynced and renamed onto `path` in one step. On an error it is removed, and
    `path` keeps its old content (or stays absent): never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = partial_name(path)
    try:
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as temporary:
        temporary.write_text(text)


@contextmanager
def staged_folder(path: str | Path, name: str, inputs: dict[str, str | Path]) -> Iterator[Path]:
    """Build output folder `path` (config key `name`) in a temporary sibling, yielded;
    when the block ends it replaces `path`, on an error it is dropped. Siblings a
    killed run left behind are removed first. check_output_path guards `path`."""
    check_output_path(path, name, inputs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    staging = partial_name(path)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(staging, path)
    sync_folder(path.parent)
