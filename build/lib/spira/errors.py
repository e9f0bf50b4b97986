"""User-facing errors and the one mapping from an error to a line on stderr and an exit status.

Every DVC stage (`spira.stages.*`) and every `spira` subcommand runs inside
`exit_on_user_error`. A `UserError` (bad input, unsafe params, missing noise
recordings, an untrusted checkpoint, a refused promotion, ...) and an output
the file system refuses to take (full disk, file-size limit, read-only folder)
end the command with one line, `error: <message>`, and an exit status:

- 1 (`EXIT_REFUSED`): the input was refused or a step failed on it (the default);
- 2 (`EXIT_USAGE`): the command line itself (argparse's own status, a `UsageError`), and for
  `spira predict`/`spira serve` a model that cannot be loaded (nothing scored).

Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_REFUSED = 1
EXIT_USAGE = 2

# Errors that only a write raises.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EDQUOT})


class UserError(Exception):
    """An error the user can fix; its message is one line naming the file or setting and the problem."""


class UsageError(UserError):
    """A command line that cannot be run as written (an override Hydra cannot apply): EXIT_USAGE."""


def byte_size(count: int) -> str:
    """A byte count for a message: 4.4 TB, 32.0 kB."""
    for unit, scale in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} bytes"


def free_space(path: Path) -> str:
    """'12.3 MB free of 1.0 GB' on the file system holding `path` (its nearest existing folder)."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        usage = shutil.disk_usage(folder)
    except OSError:
        return "free space unknown"
    return f"{byte_size(usage.free)} free of {byte_size(usage.total)}"


def fail(message: str, status: int) -> None:
    """End the command with its one line (a message of several lines, a tool's output quoted, joined)."""
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    print(f"error: {line}", file=sys.stderr)
    sys.exit(status)


@contextmanager
def exit_on_user_error(prefix: str = "", status: int = EXIT_REFUSED, also: tuple[type[Exception], ...] = ()) -> Iterator[None]:
    """Map a UserError (and the `also` exceptions a command treats as the user's) and a refused
    write to `error: <prefix><message>` on stderr and exit `status`; anything else propagates."""
    try:
        yield
    except UsageError as error:
        fail(f"{prefix}{error}", EXIT_USAGE)
    except UserError as error:
        fail(f"{prefix}{error}", status)
    except also as error:
        fail(f"{prefix}{error}", status)
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        # A write outside spira.safety's helpers (Lightning saving a checkpoint, the ONNX exporter):
        # the library's error seldom names the file, the file system's free space says enough.
        where = Path(error.filename) if error.filename else Path.cwd()
        fail(f"cannot write {error.filename or 'an output of this stage'}: {error.strerror}; "
             f"{free_space(where)} on that file system. DVC records no output of a failed stage: rerun it when there is room",
             EXIT_REFUSED)  # fmt: skip
