"""LangChain's SQLChatMessageHistory tables, read-only: one conversation per session_id."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import column, create_engine, inspect, select, table
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from ..errors import InvalidInput
from ..validation import is_unicode
from .common import SourceConversation, SourceMessage, digest_origin
from .keys import key_of, shown_key, value_of
from .lc_messages import from_langchain
from .locations import Location, locate
from .sqlite_files import ReadOnlySqlite

TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
STREAM_ROWS = 1_000


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
        self._file: ReadOnlySqlite | None = None
        if path is None and not url:
            raise InvalidInput("Give a database URL or a SQLite file.")
        if path is None and "://" not in (url or "") and not (url or "").strip().startswith("file:"):
            raise InvalidInput("That is not a database URL (for example sqlite:///chat.db or postgresql://…).")
        location = Location(file=path) if path is not None else locate(url or "")
        locator: str | bytes
        if location.file is not None:
            self._file = ReadOnlySqlite(location.file)
            self.engine = create_engine("sqlite+pysqlite://", creator=self._file.connect)
            where = name or (str(path) if path is not None else (url or "").strip())
            locator = upload_bytes if upload_bytes is not None else "file:" + str(self._file.path)
        else:
            assert location.server is not None
            self.engine, where = _read_only_postgres(location.server)
            locator = where
        self.label = f"{where}, table {table_name}"
        self.origin = digest_origin(
            "langchain-sql", locator if isinstance(locator, bytes) else locator + "|" + table_name
        )
        self._table = table(table_name, column("id"), column("session_id"), column("message"))
        try:
            self._has_id = self._check()
        except InvalidInput:
            self.close()
            raise

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
        if keys is not None and len(keys) == 1:  # one session (Look inside): read its rows only
            only = value_of(next(iter(keys)))
            if only is None:
                query = query.where(t.c.session_id.is_(None))
            elif not isinstance(only, str) or is_unicode(only):  # bad bytes cannot be bound: read and filter
                query = query.where(t.c.session_id == only)
        query = query.order_by(t.c.session_id, t.c.id if self._has_id else t.c.session_id)
        current: Any = None
        messages: list[SourceMessage] = []
        try:
            with self.engine.connect() as connection:
                rows = connection.execution_options(stream_results=True, yield_per=STREAM_ROWS).execute(query)
                for session_id, raw in rows:
                    if not messages or session_id != current or type(session_id) is not type(current):
                        if messages and (keys is None or key_of(current) in keys):
                            yield self._conversation(current, messages)
                        current, messages = session_id, []
                    if keys is None or key_of(session_id) in keys:
                        messages.append(_decode(raw))
                if messages and (keys is None or key_of(current) in keys):
                    yield self._conversation(current, messages)
        except (DBAPIError, SQLAlchemyError) as exc:
            raise InvalidInput(f"The database could not be read to the end: {_reason(exc)}") from None

    def _conversation(self, session_id: Any, messages: list[SourceMessage]) -> SourceConversation:
        key = key_of(session_id)
        return SourceConversation(key, f"LangChain session {shown_key(key)}", tuple(messages))

    def close(self) -> None:
        if hasattr(self, "engine"):
            self.engine.dispose()
        if self._file is not None:
            self._file.close()


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


def _read_only_postgres(url: URL) -> tuple[Engine, str]:
    """An engine on a PostgreSQL database whose transactions are read-only, and its URL as shown (no password)."""
    try:
        engine = create_engine(
            url.set(drivername="postgresql+psycopg"),
            connect_args={"options": "-c default_transaction_read_only=on", "connect_timeout": 10},
        )
    except (NoSuchModuleError, ArgumentError) as exc:
        raise InvalidInput(f"That database URL cannot be used: {exc}") from None
    return engine, url.render_as_string(hide_password=True)


def _reason(exc: Exception) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
