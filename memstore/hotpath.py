"""The per-turn statements on the pooled DBAPI connection, without SQLAlchemy's per-statement machinery.

A turn is three short transactions (save the message, read the memory, save the reply and its
ledger row). Through SQLAlchemy each costs 0.4-0.8 ms on a small machine; on the same pooled
connection driven directly, under 0.1 ms. The SQL here is plain and portable (SQLite and
PostgreSQL), values are adapted exactly as SQLAlchemy stores them, and everything else in the
store keeps using SQLAlchemy.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from sqlalchemy import Engine

from .database import describe_driver_error
from .errors import NotFound, StorageError

MESSAGE_COLUMNS = ("id", "conversation_id", "seq", "turn", "role", "content", "status", "error", "tokens",
                   "tokenizer", "created_at")
CONVERSATION_COLUMNS = ("id", "user_id", "title", "memory_type", "window_turns", "max_tokens", "system_prompt",
                        "created_at", "updated_at", "last_seq", "last_turn", "message_count", "token_total")
SUMMARY_COLUMNS = ("id", "conversation_id", "memory_type", "text", "from_turn", "through_turn", "tokens",
                   "created_at", "call_id")
JSON_CALL_COLUMNS = frozenset({"params", "request", "sections"})


class HotPath:
    """Plain SQL on raw pooled connections for the statements every turn runs."""

    def __init__(self, engine: Engine):
        self._engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)

    def sql(self, text: str) -> str:
        """Portable SQL written with '?' placeholders, in the driver's own paramstyle."""
        return text if self._mark == "?" else text.replace("?", self._mark)

    def stamp(self, value: datetime) -> Any:
        """A datetime as SQLAlchemy stores it: naive UTC text on SQLite, aware on PostgreSQL."""
        if not self.sqlite:
            return value
        value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def read_stamp(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[Any]:
        """A cursor in one transaction; SQLite writers take the write lock up front."""
        raw = self._engine.raw_connection()
        try:
            cursor = raw.cursor()
            if self.sqlite:
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
            except BaseException:
                raw.rollback()
                raise
            raw.commit()
        except self._errors as exc:
            raise StorageError(describe_driver_error(exc)) from None
        finally:
            raw.close()

    # -- statements ---------------------------------------------------------------------------

    def owned(self, cursor: Any, user_id: str, conversation_id: int) -> None:
        cursor.execute(self.sql("SELECT id FROM conversations WHERE id = ? AND user_id = ?"),
                       (conversation_id, user_id))
        if cursor.fetchone() is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")

    def conversation(self, cursor: Any, user_id: str, conversation_id: int) -> dict[str, Any]:
        cursor.execute(self.sql(f"SELECT {', '.join(CONVERSATION_COLUMNS)} FROM conversations "
                                "WHERE id = ? AND user_id = ?"), (conversation_id, user_id))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        out = dict(zip(CONVERSATION_COLUMNS, row))
        out["created_at"], out["updated_at"] = self.read_stamp(out["created_at"]), self.read_stamp(out["updated_at"])
        return out

    def bump(self, cursor: Any, user_id: str, conversation_id: int, *, tokens: int, new_turn: bool,
             now: datetime) -> tuple[int, int]:
        """Count one more message on the conversation; returns (seq, last turn)."""
        turn_part = ", last_turn = last_turn + 1" if new_turn else ""
        cursor.execute(self.sql(
            "UPDATE conversations SET last_seq = last_seq + 1, message_count = message_count + 1, "
            f"token_total = token_total + ?, updated_at = ?{turn_part} WHERE id = ? AND user_id = ? "
            "RETURNING last_seq, last_turn"), (tokens, self.stamp(now), conversation_id, user_id))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        return row[0], row[1]

    def insert(self, cursor: Any, table: str, values: dict[str, Any]) -> int:
        columns = list(values)
        adapted = [json.dumps(values[c], ensure_ascii=False) if table == "model_calls" and c in JSON_CALL_COLUMNS
                   else self.stamp(values[c]) if isinstance(values[c], datetime) else values[c] for c in columns]
        cursor.execute(self.sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                f"({', '.join('?' for _ in columns)}) RETURNING id"), adapted)
        return cursor.fetchone()[0]

    def messages(self, cursor: Any, where: str, params: Sequence[Any], *, order: str, limit: int | None = None
                 ) -> list[dict[str, Any]]:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        cursor.execute(self.sql(f"SELECT {', '.join(MESSAGE_COLUMNS)} FROM messages WHERE {where} "
                                f"ORDER BY {order}{tail}"), tuple(params))
        rows = [dict(zip(MESSAGE_COLUMNS, row)) for row in cursor.fetchall()]
        for row in rows:
            row["created_at"] = self.read_stamp(row["created_at"])
        return rows

    def latest_summary(self, cursor: Any, user_id: str, conversation_id: int, memory_type: str
                       ) -> dict[str, Any] | None:
        cursor.execute(self.sql(f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM summaries WHERE conversation_id = ? "
                                "AND user_id = ? AND memory_type = ? ORDER BY id DESC LIMIT 1"),
                       (conversation_id, user_id, memory_type))
        row = cursor.fetchone()
        if row is None:
            return None
        out = dict(zip(SUMMARY_COLUMNS, row))
        out["created_at"] = self.read_stamp(out["created_at"])
        return out
