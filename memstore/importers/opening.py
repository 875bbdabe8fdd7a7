"""Open a source from what the Conversations page was given: an uploaded file, or a path or URL on this computer."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import Limits
from ..errors import InvalidInput
from .chatgpt import ChatGPTExport
from .common import Source
from .langchain_sql import LangChainSqlHistory
from .langgraph import LangGraphCheckpoints
from .locations import Location, locate, refuse_own
from .scratch import scratch_folder

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
    limits: Limits | None = None,
) -> Iterator[Source]:
    """The source, open for this block; an uploaded SQLite file is read from a private copy deleted afterwards."""
    if kind not in SOURCE_KINDS:
        raise InvalidInput(f"Memory Lab cannot import from {kind!r}.")
    if data is None and not (location and location.strip()):
        raise InvalidInput("Upload a file, or give where it is.")
    where = location.strip() if location else ""
    found = locate(where) if data is None else None
    if found is not None:
        refuse_own(found, own_database)
        if found.file is None and kind != "langchain":
            raise InvalidInput("Give the path of the file; only LangChain histories are read from a database server.")
    source: Source
    with scratch_folder() as folder:  # removed afterwards, or by the next import if this process is killed
        if kind == "chatgpt":
            source = ChatGPTExport(data=data, name=name, limits=limits, path=None if data is not None else _file(found))
        elif data is not None:
            copy = folder / "upload.db"
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
                else LangChainSqlHistory(path=_file(found), table_name=table_name)
            )
        else:
            source = LangGraphCheckpoints(_file(found))
        try:
            yield source
        finally:
            source.close()


def _file(found: Location | None) -> Path:
    assert found is not None and found.file is not None
    return found.file
