"""Safe outputs: guarded deletes and atomic writes.

Output paths are fixed (spira.layout), and a stage replaces its output folder;
run directly, with recordings configured inside one (`data.root=data/prepared`),
it must not delete them, the repository or a home folder (`check_output_path`). And a stage killed or failing half-way
must leave no half-written file or folder under an output's name: files are
written to a temporary name beside them and renamed (`atomic_file`), folders
built in a temporary sibling and swapped in (`staged_folder`). A write that
fails (full disk, file-size limit, read-only or forbidden folder) ends as one
OutputWriteError line naming what was written, where, and the free space there.
"""

from __future__ import annotations

import ctypes
import errno
import glob
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from spira.errors import WRITE_ERRNOS, UserError, byte_size, free_space


class UnsafeOutputError(UserError, ValueError):
    """An output path that would delete inputs or a folder nobody means to replace."""


class OutputWriteError(UserError, OSError):
    """An output could not be written; its message is the one line a stage prints."""

    def __str__(self) -> str:
        return self.strerror


# Permission errors count as refused writes when they name the output's own path.
PERMISSION_ERRNOS = frozenset({errno.EACCES, errno.EPERM})


def _within(filename: str, path: Path) -> bool:
    """Whether `filename` is `path`, inside it, or inside the temporary sibling it is built in."""
    file = Path(os.path.abspath(filename))
    return any(file == folder or folder in file.parents for folder in (path, partial_name(path)))


def final_location(filename: str | None, path: Path) -> Path:
    """Where the failed file would have ended: its place under `path`, not the temporary sibling."""
    if filename is None:
        return path
    file, staging = Path(os.path.abspath(filename)), partial_name(path)
    return path / file.relative_to(staging) if file == staging or staging in file.parents else file


def write_failure(error: BaseException, what: str, path: Path) -> OutputWriteError | None:
    """The OutputWriteError for `error` raised while writing `what` at `path`, or None when
    `error` is not a failed write there: a bad input keeps its own error, and a write
    elsewhere is left to the output it belongs to."""
    if not isinstance(error, OSError) or isinstance(error, OutputWriteError):
        return None
    path = Path(path).absolute()
    # A failed write() names no file; it belongs to the output being built.
    here = _within(error.filename, path) if error.filename is not None else error.errno in WRITE_ERRNOS
    if not here or error.errno not in WRITE_ERRNOS | PERMISSION_ERRNOS:
        return None
    return OutputWriteError(
        error.errno,
        f"cannot write {what} at {final_location(error.filename, path)}: {error.strerror}; {free_space(path)} on that file system. "
        f"Nothing was written: {path} is as it was",
    )


def raise_write_failure(error: BaseException, what: str, path: Path) -> None:
    """Raise write_failure(error, ...) from `error` when there is one; the caller re-raises otherwise."""
    failure = write_failure(error, what, path)
    if failure is not None:
        raise failure from error


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
                f"refusing to delete {name} ({path}): it overlaps {label} ({folder}). "
                "Nothing was deleted: keep the recordings outside the folders the pipeline writes."
            )


def replace_folder(path: str | Path, name: str, inputs: dict[str, str | Path]) -> Path:
    """Delete output folder `path` (after check_output_path) and create it empty; returns it."""
    check_output_path(path, name, inputs)
    path = Path(path)
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    except OSError as error:
        raise_write_failure(error, name, path)
        raise
    return path


def partial_name(path: Path) -> Path:
    """The temporary sibling `path` is built under (hidden; named by the process that builds it)."""
    return path.with_name(f".{path.name}.partial-{os.getpid()}")


def previous_name(path: Path) -> Path:
    """Where a folder swap keeps the old `path` until the new one has the name."""
    return path.with_name(f".{path.name}.previous-{os.getpid()}")


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def left_behind(path: Path, kind: str) -> list[Path]:
    """The `.name.<kind>-PID` siblings of `path` whose process has ended (a killed run's), oldest
    first. This process's own PID counts as ended: a killed run in an earlier container may have had it."""
    found = []
    for sibling in path.parent.glob(f".{glob.escape(path.name)}.{kind}-*"):
        pid = sibling.name.rsplit("-", 1)[-1]
        if pid.isdigit() and (int(pid) == os.getpid() or not process_alive(int(pid))):
            found.append(sibling)
    return sorted(found, key=lambda sibling: sibling.lstat().st_mtime_ns)


def recover_folder(path: Path) -> None:
    """Undo what a run killed inside staged_folder left beside output folder `path`.

    Killed between the two renames of a swap, `path` is missing and the
    previous complete folder waits under `.name.previous-PID`: it gets its
    name back. Otherwise those siblings (and half-built `.name.partial-PID`
    folders) are only leftovers and are removed."""
    previous = left_behind(path, "previous")
    if previous and not path.exists():
        os.replace(previous.pop(), path)
        sync_folder(path.parent)
    for stale in [*left_behind(path, "partial"), *previous]:
        shutil.rmtree(stale, ignore_errors=True)


RENAME_EXCHANGE = 2
AT_FDCWD = -100


def exchange(first: Path, second: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE): a reader
    finds one or the other under each name, never nothing. False where the system or
    file system cannot, and nothing changed."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if renameat2 is None:
        return False
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))


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
    temporary = partial_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in left_behind(path, "partial"):  # a killed run's temporary
            stale.unlink(missing_ok=True)
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        sync_folder(path.parent)
    except OSError as error:
        raise_write_failure(error, path.name, path)
        raise
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_file(path) as temporary:
        temporary.write_text(text)


@contextmanager
def staged_folder(path: str | Path, name: str, inputs: dict[str, str | Path]) -> Iterator[Path]:
    """Build output folder `path` (config key `name`) in a temporary sibling, yielded;
    when the block ends it replaces `path`, on an error it is dropped. What a killed
    run left behind is recovered first (recover_folder). check_output_path guards `path`."""
    check_output_path(path, name, inputs)
    path = Path(path)
    staging, previous = partial_name(path), previous_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        recover_folder(path)
        staging.mkdir()
        yield staging
        swap_in(staging, path, previous)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if previous.exists() and not path.exists():
            os.replace(previous, path)
        raise_write_failure(error, name, path)
        raise
    shutil.rmtree(previous, ignore_errors=True)


def swap_in(staging: Path, path: Path, previous: Path) -> None:
    """Give folder `staging` the name `path`; the old `path`, if any, ends as `previous`.

    Renames only, so the old folder stays whole until the new one has its name: in one
    step where the file system can exchange two names, else in two, and a run killed
    between them leaves `path` missing and the old folder as `previous`, which the next
    run puts back (recover_folder)."""
    if path.exists() and exchange(staging, path):
        os.replace(staging, previous)
    else:
        if path.exists():
            os.replace(path, previous)
        os.replace(staging, path)
    sync_folder(path.parent)
