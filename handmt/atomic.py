"""Files that a kill at any moment leaves either whole or untouched: checkpoints, logs, caches.

`atomic_write(path)` yields a temporary path next to `path`; once the caller has written it, it is
flushed to disk (fsync), renamed over `path` (an atomic replace on POSIX) and the folder is
flushed too, so that the rename itself survives a power loss. On an error the temporary file is
removed.

Temporary files are named `.<name>.<pid>.tmp`. A SIGKILL runs no cleanup, so
`remove_stale_temps(folder)` deletes, on the next start, the temporary files of processes that no
longer exist, never those of a process still writing. Files are created by `open`, so they get
the umask's normal mode (mkstemp's 0600 would survive the rename).
"""

import contextlib
import os
import re
from pathlib import Path

__all__ = ["atomic_write", "remove_stale_temps"]

TEMP_NAME = re.compile(r"^\..+\.(\d+)\.tmp$")


def temp_path(path):
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def fsync(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path):
    """Yield a temporary path to write `path`'s new content to; see the module docstring."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = temp_path(path)
    temp.unlink(missing_ok=True)  # left by a killed process whose pid this one now has
    try:
        yield temp
        fsync(temp)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    fsync(path.parent)


def process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder):
    """Delete the temporary files of `atomic_write` in `folder` whose process is gone; return
    their paths."""
    removed = []
    for entry in os.scandir(folder):
        match = TEMP_NAME.match(entry.name)
        if match and entry.is_file() and not process_exists(int(match.group(1))):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(Path(entry.path))
    return removed
