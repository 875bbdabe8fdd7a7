"""Open a source from what the Conversations page was given: an uploaded file, or a path or URL on this computer."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from ..errors import InvalidInput
from .chatgpt import ChatGPTExport
from .common import Source
from .langchain_sql import LangChainSqlHistory
from .langgraph import LangGraphCheckpoints

SOURCE_KINDS = {
    "langchain": "LangChain SQLChatMessageHistory",
    "langgraph": "LangGraph checkpoints (SqliteSaver)",
    "chatgpt": "ChatGPT data export",
}


@contextmanager
def open_source(
    kind: str,
    *,
    data: bytes | None = None,
    name: str | None = None,
    location: str | None = None,
    table_name: str = "message_store",
    own_database: str | None = None,
) -> Iterator[Source]:
    """The source, open for this block; an uploaded SQLite file is read from a private copy deleted afterwards."""
    if kind not in SOURCE_KINDS:
        raise InvalidInput(f"Memory Lab cannot import from {kind!r}.")
    if data is None and not (location and location.strip()):
        raise InvalidInput("Upload a file, or give where it is.")
    where = location.strip() if location else ""
    if data is None:
        _not_our_own(where, own_database)
    source: Source
    with tempfile.TemporaryDirectory(prefix="memorylab-import-") as folder:
        if kind == "chatgpt":
            source = ChatGPTExport(data=data, name=name) if data is not None else ChatGPTExport(path=_path(where))
        elif data is not None:
            copy = Path(folder) / "upload.db"
            copy.write_bytes(data)
            shown = name or "the uploaded file"
            source = (
                LangChainSqlHistory(path=copy, table_name=table_name, upload_bytes=data, name=shown)
                if kind == "langchain"
                else LangGraphCheckpoints(copy, upload_bytes=data, name=shown)
            )
        elif kind == "langchain":
            source = (
                LangChainSqlHistory(url=where, table_name=table_name)
                if "://" in where
                else LangChainSqlHistory(path=_path(where), table_name=table_name)
            )
        else:
            source = LangGraphCheckpoints(_path(where))
        try:
            yield source
        finally:
            source.close()


def _path(where: str) -> Path:
    if where.startswith("sqlite:///"):
        where = where.removeprefix("sqlite:///")
    if "\x00" in where:
        raise InvalidInput("A path cannot contain a NUL byte.")
    return Path(where).expanduser()


def _not_our_own(where: str, own_database: str | None) -> None:
    """Memory Lab's own database holds every user's conversations: it is never a source."""
    if not own_database:
        return
    try:
        own = make_url(own_database)
    except ArgumentError:
        return
    if own.get_backend_name() == "sqlite" and own.database:
        mine = Path(own.database).expanduser().resolve()
        if ("://" not in where or where.startswith("sqlite:///")) and _path(where).resolve() == mine:
            raise InvalidInput("That is Memory Lab's own database; import from another app's.")
    elif "://" in where:
        try:
            theirs = make_url(where)
        except ArgumentError:
            return
        if (theirs.host, theirs.port, theirs.database) == (own.host, own.port, own.database):
            raise InvalidInput("That is Memory Lab's own database; import from another app's.")
