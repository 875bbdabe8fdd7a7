"""A throw-away PostgreSQL cluster for the storage tests: found in Debian's package, started on first use.

MEMORYLAB_TEST_POSTGRES_URL points the tests at a server of your own instead. Without either, the
PostgreSQL runs of the storage tests are skipped, and the end of the run says so.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

URL_ENV = "MEMORYLAB_TEST_POSTGRES_URL"


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL's programs (Debian keeps them under /usr/lib/postgresql/N/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def available() -> bool:
    return bool(os.environ.get(URL_ENV)) or bin_dir() is not None


class ThrowawayPostgres:
    """initdb and pg_ctl on a temporary folder, listening on 127.0.0.1 only; `stop` removes everything."""

    def __init__(self) -> None:
        self.url: str | None = os.environ.get(URL_ENV)
        self._dir: Path | None = None

    def start(self) -> str:
        if self.url:
            return self.url
        programs = bin_dir()
        if programs is None:
            raise RuntimeError("PostgreSQL is not installed (./install.sh --dev installs it).")
        self._dir = Path(tempfile.mkdtemp(prefix="memorylab-pg-"))
        data = self._dir / "data"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run it as Debian's postgres user
            shutil.chown(self._dir, "postgres", "postgres")
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"  # a PATH without sbin (sudo, cron) lacks it
            as_postgres = [runuser, "-u", "postgres", "--"]
        run = lambda *cmd: subprocess.run([*as_postgres, *cmd], check=True, capture_output=True)  # noqa: E731
        run(str(programs / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        run(
            str(programs / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self._dir / "server.log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {self._dir} -c fsync=off",
            "start",
        )
        run(str(programs / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "memorylab_test")
        self._as_postgres, self._programs, self._data = as_postgres, programs, data
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/memorylab_test"
        return self.url

    def stop(self) -> None:
        if self._dir is None:
            return
        subprocess.run(
            [*self._as_postgres, str(self._programs / "pg_ctl"), "-D", str(self._data), "-m", "fast", "stop"],
            capture_output=True,
        )
        shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None
