"""What a path or database URL typed on the Conversations page names, and whether that is Memory Lab's own database.

One reading of a location serves both the opener and the guard, so no spelling of a URL (a driver name, a query
string, a file: URI, a link, a relative path) can open a file the guard did not check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from ..errors import InvalidInput

OWN_DATABASE = "That is Memory Lab's own database; import from another app's."
LOOPBACK = {"localhost", "127.0.0.1", "::1", "[::1]", ""}
POSTGRES_PORT = 5432


NUL_IN_PATH = "A path cannot contain a NUL byte."


@dataclass(frozen=True)
class Location:
    """A file on this computer, or a PostgreSQL database on a server (exactly one of them)."""

    file: Path | None = None
    server: URL | None = None


def locate(where: str) -> Location:
    """The file or server a path, a file: URI or a database URL names; one sentence if it names neither."""
    location = _locate(where.strip())
    if "\x00" in str(location.file or ""):  # also spelled %00 in a URI or URL
        raise InvalidInput(NUL_IN_PATH)
    return location


def _locate(where: str) -> Location:
    if "\x00" in where:
        raise InvalidInput(NUL_IN_PATH)
    if where.startswith("file:"):
        return Location(file=_file_uri(where))
    if "://" not in where:
        return Location(file=Path(where).expanduser())
    try:
        url = make_url(where)
    except (ArgumentError, ValueError):
        raise InvalidInput("That is not a database URL (for example sqlite:///chat.db or postgresql://…).") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:":
            raise InvalidInput("Give the SQLite database as a file path: sqlite:///path/to/chat.db.")
        return Location(file=_file_uri(database) if database.startswith("file:") else Path(database).expanduser())
    if backend == "postgresql":
        return Location(server=url)
    raise InvalidInput(f"Memory Lab reads LangChain histories from SQLite or PostgreSQL, not {backend}.")


def refuse_own(location: Location, own_database: str | None) -> None:
    """Memory Lab's own database holds every user's conversations: it is never a source, however it is named."""
    if not own_database:
        return
    try:
        own = locate(own_database)
    except InvalidInput:
        return  # an in-memory database: no file or server to protect
    if location.file is not None and own.file is not None and _same_file(location.file, own.file):
        raise InvalidInput(OWN_DATABASE)
    if location.server is not None and own.server is not None and _server(location.server) == _server(own.server):
        raise InvalidInput(OWN_DATABASE)


def _file_uri(uri: str) -> Path:
    """The path of a file: URI (SQLite's form: file:path, file:///path, file://localhost/path; ?query ignored)."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise InvalidInput("A file: URI names a file on this computer: file:///path/to/chat.db.")
    if not parts.path:
        raise InvalidInput("Give the SQLite database as a file path: sqlite:///path/to/chat.db.")
    return Path(unquote(parts.path)).expanduser()


def _same_file(a: Path, b: Path) -> bool:
    """The same file through any link, hard link or relative path (by device and inode when both exist)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _server(url: URL) -> tuple[str, int, str]:
    """Host, port and database name as a server sees them: every loopback name and local socket is one host."""
    query = {k: v if isinstance(v, str) else v[0] for k, v in url.query.items() if v}
    host = (url.host or query.get("host") or "localhost").lower()
    if host in LOOPBACK or host.startswith("/"):
        host = "localhost"
    port_text = query.get("port", "")
    port = url.port or (int(port_text) if port_text.isdigit() else POSTGRES_PORT)
    database = url.database or query.get("dbname") or url.username or ""
    return host, port, database
