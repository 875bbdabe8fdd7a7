"""Which database a store is, and which app instance kept something: so nothing is saved into the wrong one.

A database's URL does not name it: one file has many names, and a new file can sit where a deleted one
was. So each database holds a random id of its own (given when first opened, see SqlBase.identity),
and its location is shown beside it for people, without user name or password.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL

IN_MEMORY = "a temporary database in memory"


@dataclass(frozen=True)
class DatabaseIdentity:
    """A database's own random id ("" when it could not be read or given) and where it is, for people."""

    id: str
    where: str

    def holds(self, database_id: str) -> bool:
        """Whether something kept for `database_id` belongs here (an unknown id belongs nowhere)."""
        return bool(self.id) and database_id == self.id


def where_is(url: URL) -> str:
    """A SQLite file's absolute path, or backend://host:port/name for a server: never a user, password or query."""
    backend = url.get_backend_name()
    name = url.database or ""
    if backend == "sqlite":
        if name in ("", ":memory:") or "mode=memory" in name:
            return IN_MEMORY
        if name.startswith("file:"):
            name = name.removeprefix("file:").split("?", 1)[0]
        return str(Path(name).expanduser().resolve())
    port = f":{url.port:d}" if url.port else ""
    return f"{backend}://{url.host or 'localhost'}{port}/{name}"


def this_instance() -> str:
    """This app process, as people can find it: host name and process id."""
    return f"{socket.gethostname()} (process {os.getpid():d})"
