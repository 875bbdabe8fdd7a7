"""Private folders for one import (an upload's copy, a WAL database's copy), never left behind by a killed process.

Each folder holds a lock its process keeps for as long as the folder is in use; the operating system lets go of it
when the process dies, however it dies. Opening a folder first removes the ones whose lock nobody holds.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

PREFIX = "memorylab-import-"
LOCK_NAME = ".in-use"
UNLOCKED_GRACE_S = 60.0  # a folder made but not yet locked (a few microseconds) is left alone for this long


@contextmanager
def scratch_folder() -> Iterator[Path]:
    """A new private folder (mode 700) under the temporary directory, removed when the block ends."""
    remove_stale()
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    try:
        with _lock(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale(root: Path | None = None) -> int:
    """Remove the import folders of processes that have ended; returns how many were removed."""
    root = root or Path(tempfile.gettempdir())
    removed = 0
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(PREFIX)]
    except OSError:
        return 0
    for folder in candidates:
        try:
            info = folder.lstat()
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                continue  # not ours: another user's, or a link someone put there
            if not (folder / LOCK_NAME).exists():
                if time.time() - info.st_mtime > UNLOCKED_GRACE_S:
                    shutil.rmtree(folder)
                    removed += 1
                continue
            with _lock(folder, timeout_s=0):
                shutil.rmtree(folder)
                removed += 1
        except (Timeout, OSError):
            continue  # in use by a live import, or removed meanwhile by another
    return removed


def _lock(folder: Path, timeout_s: float = -1) -> FileLock:
    """An OS lock (released by the kernel when the process dies; never a lock file that outlives it)."""
    return FileLock(folder / LOCK_NAME, timeout=timeout_s, fallback_to_soft=False, thread_local=False)
