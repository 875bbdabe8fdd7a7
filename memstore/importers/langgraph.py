"""LangGraph checkpoints written by SqliteSaver, read-only: one conversation per thread, from its newest state."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .common import SourceConversation, digest_origin
from .keys import key_of, shown_key
from .lc_messages import from_langchain
from .sqlite_files import ReadOnlySqlite

# What LangGraph's serializer raises on bytes it cannot decode (msgpack's errors are ValueErrors).
DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError, RecursionError)
NEEDED_COLUMNS = {"thread_id", "checkpoint_ns", "checkpoint_id", "type", "checkpoint"}


class LangGraphCheckpoints:
    """A langgraph-checkpoint-sqlite database, decoded by SqliteSaver with LangGraph's serializer in strict mode.

    Strict mode builds only the types LangGraph lists as safe (messages among them), so a checkpoint file cannot
    make the server import or run anything; any other object arrives as plain data and is reported as unknown.
    """

    kind = "LangGraph thread"

    def __init__(self, path: Path, *, upload_bytes: bytes | None = None, name: str | None = None) -> None:
        from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
        from langgraph.checkpoint.sqlite import SqliteSaver

        self._file = ReadOnlySqlite(path)
        self.label = name or str(path)
        self.origin = digest_origin(
            "langgraph-sqlite", upload_bytes if upload_bytes is not None else "file:" + str(self._file.path)
        )
        try:
            self._conn = self._file.connect()
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(checkpoints)")}
        except sqlite3.DatabaseError as exc:
            self.close()
            raise InvalidInput(f"The file is not a SQLite database LangGraph wrote ({exc}).") from None
        if not columns >= NEEDED_COLUMNS:
            self.close()
            raise InvalidInput("The database has no checkpoints table as LangGraph's SqliteSaver writes it.")
        self._saver = SqliteSaver(self._conn, serde=JsonPlusSerializer(allowed_msgpack_modules=None))
        self._saver.is_setup = True  # its setup() creates tables and sets WAL: never on someone else's database

    def conversations(self, keys: Collection[str] | None = None) -> Iterator[SourceConversation]:
        try:
            threads = self._conn.execute(
                "SELECT thread_id FROM checkpoints WHERE checkpoint_ns = '' GROUP BY thread_id ORDER BY MIN(rowid)"
            )
            for (thread_id,) in threads:
                if keys is None or key_of(thread_id) in keys:
                    yield self._thread(thread_id)
        except sqlite3.DatabaseError as exc:
            raise InvalidInput(f"The checkpoints could not be read to the end ({exc}).") from None

    def _thread(self, thread_id: Any) -> SourceConversation:
        key = key_of(thread_id)
        title = f"LangGraph thread {shown_key(key)}"
        try:
            found = self._saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
        except sqlite3.DatabaseError:
            raise
        except DECODE_ERRORS as exc:  # a damaged checkpoint: this thread cannot be imported, the others can
            return SourceConversation(key, title, (), problem=f"its newest checkpoint cannot be decoded ({exc})"[:300])
        if found is None:
            return SourceConversation(key, title, (), problem="it has no checkpoint")
        values = found.checkpoint.get("channel_values") or {}
        messages = _messages_channel(values)
        created = _when(found.checkpoint.get("ts"))
        if messages is None:
            return SourceConversation(key, title, (), created, problem="its state has no list of messages")
        return SourceConversation(key, title, tuple(from_langchain(m) for m in messages), created)

    def close(self) -> None:
        if hasattr(self, "_conn"):
            self._conn.close()
        self._file.close()


def _messages_channel(values: dict) -> list | None:
    """The state's "messages" list, or else the first list of messages in it (graphs may name it otherwise)."""
    if isinstance(values.get("messages"), list):
        return values["messages"]
    for value in values.values():
        if isinstance(value, list) and value and all(hasattr(v, "content") and hasattr(v, "type") for v in value):
            return value
    return None


def _when(ts: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(ts) if isinstance(ts, str) else None
    except ValueError:
        return None
