"""LangChain's SQLChatMessageHistory tables, read-only: one conversation per session_id."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import column, create_engine, inspect, select, table
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from ..errors import InvalidInput
from .common import SourceConversation, SourceMessage, digest_origin, read_only_uri
from .lc_messages import from_langchain

TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
STREAM_ROWS = 1_000


def read_only_sqlite(path: Path) -> Engine:
    """An engine over a SQLite file that cannot write to it (see read_only_uri)."""
    uri = read_only_uri(path)
    return create_engine("sqlite+pysqlite://", creator=lambda: sqlite3.connect(uri, uri=True, check_same_thread=False))


class LangChainSqlHistory:
    """The message_store table (or another name) that langchain-community's SQLChatMessageHistory writes."""

    kind = "LangChain SQLChatMessageHistory"

    def __init__(
        self,
        *,
        url: str | None = None,
        path: Path | None = None,
        table_name: str = "message_store",
        upload_bytes: bytes | None = None,
        name: str | None = None,
    ) -> None:
        if not TABLE_NAME.fullmatch(table_name):
            raise InvalidInput("A table name is letters, digits and underscores, starting with a letter.")
        self.table_name = table_name
        if path is not None:
            self.engine = read_only_sqlite(path)
            where = name or str(path)
            locator: str | bytes = upload_bytes if upload_bytes is not None else "file:" + str(path.resolve())
        elif url:
            self.engine, where, locator = _read_only_engine(url)
        else:
            raise InvalidInput("Give a database URL or a SQLite file.")
        self.label = f"{where}, table {table_name}"
        self.origin = digest_origin(
            "langchain-sql", locator if isinstance(locator, bytes) else locator + "|" + table_name
        )
        self._table = table(table_name, column("id"), column("session_id"), column("message"))
        self._has_id = self._check()

    def _check(self) -> bool:
        try:
            names = inspect(self.engine).get_table_names()
            columns = (
                {c["name"] for c in inspect(self.engine).get_columns(self.table_name)}
                if self.table_name in names
                else set()
            )
        except (DBAPIError, SQLAlchemyError) as exc:
            raise InvalidInput(f"The database cannot be read: {_reason(exc)}") from None
        if not {"session_id", "message"} <= columns:
            found = ", ".join(sorted(names)[:10]) or "none"
            raise InvalidInput(
                f"The database has no table {self.table_name!r} with session_id and message columns, as "
                f"SQLChatMessageHistory writes (tables found: {found})."
            )
        return "id" in columns

    def conversations(self, keys: Collection[str] | None = None) -> Iterator[SourceConversation]:
        t = self._table
        query = select(t.c.session_id, t.c.message)
        if keys is not None and len(keys) == 1:
            query = query.where(t.c.session_id == next(iter(keys)))
        query = query.order_by(t.c.session_id, t.c.id if self._has_id else t.c.session_id)
        current: Any = None
        messages: list[SourceMessage] = []
        try:
            with self.engine.connect() as connection:
                rows = connection.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(query)
                for session_id, raw in rows:
                    if session_id != current:
                        if messages and (keys is None or str(current) in keys):
                            yield self._conversation(current, messages)
                        current, messages = session_id, []
                    if keys is None or str(session_id) in keys:
                        messages.append(_decode(raw))
                if messages and (keys is None or str(current) in keys):
                    yield self._conversation(current, messages)
        except (DBAPIError, SQLAlchemyError) as exc:
            raise InvalidInput(f"The database could not be read to the end: {_reason(exc)}") from None

    def _conversation(self, session_id: Any, messages: list[SourceMessage]) -> SourceConversation:
        key = str(session_id)
        return SourceConversation(key, f"LangChain session {key}", tuple(messages))

    def close(self) -> None:
        self.engine.dispose()


def _decode(raw: Any) -> SourceMessage:
    """One stored row, decoded with LangChain's own message format (messages_from_dict)."""
    from langchain_core.messages import messages_from_dict

    try:
        data = json.loads(raw) if isinstance(raw, str | bytes) else raw
    except (ValueError, RecursionError) as exc:
        return SourceMessage("unknown", "", "unreadable JSON", note=str(exc)[:200])
    try:
        return from_langchain(messages_from_dict([data])[0])
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:  # pydantic's errors included
        kind = data.get("type") if isinstance(data, dict) else None
        return SourceMessage("unknown", "", kind if isinstance(kind, str) else "unreadable", note=str(exc)[:200])


def _read_only_engine(url: str) -> tuple[Engine, str, str]:
    """An engine for a SQLite or PostgreSQL URL that cannot write, the URL as shown (no password), and what names
    the database for re-imports (a SQLite file by its path, however it was given)."""
    try:
        parsed = make_url(url.strip())
    except ArgumentError:
        raise InvalidInput("That is not a database URL (for example sqlite:///chat.db or postgresql://…).") from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise InvalidInput("Give the SQLite database as a file path: sqlite:///path/to/chat.db.")
        path = Path(parsed.database)
        return read_only_sqlite(path), shown, "file:" + str(path.resolve())
    if backend == "postgresql":
        try:
            engine = create_engine(
                parsed.set(drivername="postgresql+psycopg"),
                connect_args={"options": "-c default_transaction_read_only=on", "connect_timeout": 10},
            )
        except (NoSuchModuleError, ArgumentError) as exc:
            raise InvalidInput(f"That database URL cannot be used: {exc}") from None
        return engine, shown, shown
    raise InvalidInput(f"Memory Lab reads LangChain histories from SQLite or PostgreSQL, not {backend}.")


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
