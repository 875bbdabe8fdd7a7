"""Another app's SQLite file, read without writing a byte in its folder (not even a -shm)."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

from ..errors import InvalidInput
from .scratch import scratch_folder

MAX_COPY_BYTES = 4 * 1024**3  # a WAL database is read from a private copy of at most this much
FREE_AFTER_COPY_BYTES = 256 * 1024**2
COPY_ATTEMPTS = 3


class ReadOnlySqlite:
    """A SQLite file opened for reading only, leaving its folder exactly as it was (bytes and times).

    With no -wal file beside it, the file is opened immutable: SQLite takes no locks and creates nothing. With one,
    changes not yet checkpointed live in the -wal, and reading it would make SQLite create or rewrite the -shm
    beside it (immutable would miss them); so the file and its -wal are copied to a private folder and the copy is
    read. Text that is not UTF-8 is read with its bad bytes kept as surrogates, so one bad value fails one row.
    """

    def __init__(self, path: Path) -> None:
        if "\x00" in str(path):
            raise InvalidInput("A path cannot contain a NUL byte.")
        if not path.is_file():
            raise InvalidInput(f"There is no file at {path}.")
        self.path = path.resolve()
        self._stack = ExitStack()
        wal = _sibling(self.path, "-wal")
        if not wal.exists():
            self.uri = f"file:{quote(str(self.path))}?mode=ro&immutable=1"
            return
        try:
            folder = self._stack.enter_context(scratch_folder())
            copy = _copy_with_wal(self.path, wal, folder / "source.db")
        except BaseException:
            self._stack.close()
            raise
        self.uri = f"file:{quote(str(copy))}?mode=ro"

    def connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.uri, uri=True, check_same_thread=False)
        connection.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
        return connection

    def close(self) -> None:
        self._stack.close()


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _copy_with_wal(path: Path, wal: Path, copy: Path) -> Path:
    """The database and its -wal, copied as one moment of them: retried if a writer changed either meanwhile."""
    for _ in range(COPY_ATTEMPTS):
        before = _stamp(path), _stamp(wal)
        size = before[0][0] + before[1][0]
        if size > MAX_COPY_BYTES:
            raise InvalidInput(
                f"The database is in WAL mode with changes not yet written into it, and at {size / 1e9:,.1f} GB it "
                f"is over the {MAX_COPY_BYTES / 1e9:,.1f} GB Memory Lab copies to read it without writing beside "
                "it; close the app that writes it (which folds the changes in) and try again."
            )
        if shutil.disk_usage(copy.parent).free < size + FREE_AFTER_COPY_BYTES:
            raise InvalidInput(
                f"Reading this WAL-mode database needs a private copy of {size / 1e6:,.0f} MB, and the temporary "
                "folder has not that much free space."
            )
        _sibling(copy, "-wal").unlink(missing_ok=True)
        try:
            shutil.copyfile(path, copy)
            if before[1] != (0, 0):
                shutil.copyfile(wal, _sibling(copy, "-wal"))
        except FileNotFoundError:
            continue  # the writer closed meanwhile
        if (_stamp(path), _stamp(wal)) == before:
            return copy
    raise InvalidInput("Another app kept writing to the database while it was read; try again when it is idle.")


def _stamp(path: Path) -> tuple[int, int]:
    try:
        info = os.stat(path)
    except FileNotFoundError:  # the writer closed and folded its -wal in: the next attempt sees that
        return (0, 0)
    return (info.st_size, info.st_mtime_ns)
