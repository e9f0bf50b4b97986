"""Guarded deletes: an output folder a stage replaces is never one of its inputs or a home.

Output paths are configurable (`-S data.out_dir=...`), and a stage clears its
output folder before writing it; one typo must not delete the recordings,
the repository or a home folder.
"""

from __future__ import annotations

import os
import shutil
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
