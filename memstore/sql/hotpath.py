"""The per-turn statements on the pooled DBAPI connection, without SQLAlchemy's per-statement machinery.

A turn is three short transactions (save the message and read the conversation back, read the
memory, save the reply and its ledger row). Through SQLAlchemy each costs 0.4-0.8 ms on a small machine; on
the same pooled connection driven directly, under 0.1 ms. The SQL here is plain and portable (SQLite and
PostgreSQL), values are adapted exactly as SQLAlchemy stores them, and everything else in the
store keeps using SQLAlchemy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.pool import QueuePool

from .. import database
from ..database import describe_driver_error
from ..errors import NotFound, StorageError
from ..records import Message

MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "user_id",
    "seq",
    "turn",
    "role",
    "content",
    "status",
    "error",
    "tokens",
    "tokenizer",
    "created_at",
)
READ_MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "seq",
    "turn",
    "role",
    "content",
    "status",
    "tokens",
    "tokenizer",
    "created_at",
    "error",
)  # Message's field order
CONVERSATION_COLUMNS = (
    "id",
    "user_id",
    "title",
    "memory_type",
    "window_turns",
    "max_tokens",
    "system_prompt",
    "created_at",
    "updated_at",
    "last_seq",
    "last_turn",
    "message_count",
    "token_total",
    "recall_turns",
    "recall_min_score",
    "recall_scope",
    "memory_from_turn",
)
SUMMARY_COLUMNS = (
    "id",
    "conversation_id",
    "memory_type",
    "text",
    "from_turn",
    "through_turn",
    "tokens",
    "created_at",
    "call_id",
)
JSON_CALL_COLUMNS = frozenset({"params", "request", "sections", "details"})
CHECKPOINT_WAIT_S = 2.0  # how long forgetting waits for readers of the write-ahead log before saying it must wait


class _FileConnections:
    """Detached SQLite file connections kept on a free list: a checkout is a list pop, not a pool round trip.

    SQLAlchemy's pool spends about 50 microseconds per checkout and return (events, reset on
    return); that is a third of an append. SQLite connections carry no server state to check, so
    a free list is enough. A forked child starts with an empty list.
    """

    def __init__(self, engine: Engine, keep: int):
        self._engine = engine
        self._keep = keep
        self._free: list[Any] = []
        self._pid = os.getpid()

    def get(self) -> Any:
        if self._pid != os.getpid():
            self._free, self._pid = [], os.getpid()
        try:
            return self._free.pop()
        except IndexError:
            fairy = self._engine.raw_connection()  # runs the connect event: pragmas, WAL
            fairy.detach()
            return fairy.dbapi_connection

    def put(self, connection: Any) -> None:
        if len(self._free) < self._keep and self._pid == os.getpid():
            self._free.append(connection)
        else:
            connection.close()

    def close(self) -> None:
        free, self._free = self._free, []
        for connection in free:
            connection.close()


class HotPath:
    """Plain SQL on raw pooled connections for the statements every turn runs."""

    def __init__(self, engine: Engine, *, serial: AbstractContextManager[Any] | None = None):
        self._engine = engine
        self._serial = serial if serial is not None else nullcontext()
        self.sqlite = engine.dialect.name == "sqlite"
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._errors: tuple[type[BaseException], ...] = (engine.dialect.loaded_dbapi.Error,)
        file_db = self.sqlite and isinstance(engine.pool, QueuePool)  # in-memory SQLite must share its one connection
        pool = engine.pool
        self._files = _FileConnections(engine, keep=pool.size()) if isinstance(pool, QueuePool) and file_db else None
        self._sql: dict[Any, str] = {}
        self._erase_pending = False  # the write-ahead log may still hold deleted text (a reader kept it in use)

    def close(self) -> None:
        if self._files is not None:
            if self._erase_pending:
                self.try_pending_checkpoint()
            self._files.close()

    @property
    def erase_pending(self) -> bool:
        return self._erase_pending

    def sql(self, text: str) -> str:
        """Portable SQL written with '?' placeholders, in the driver's own paramstyle."""
        return text if self._mark == "?" else text.replace("?", self._mark)

    def stamp(self, value: datetime) -> Any:
        """A datetime as SQLAlchemy stores it: naive UTC text on SQLite, aware on PostgreSQL."""
        if not self.sqlite:
            return value
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def read_stamp(self, value: Any) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @contextmanager
    def transaction(self, *, write: bool, snapshot: bool = False) -> Iterator[Any]:
        """A cursor in one transaction; SQLite writers take the write lock up front.

        A SQLite read that is one statement (or one plus a NotFound check) runs without BEGIN; a read
        of several statements that must agree asks for a `snapshot`.
        """
        with self._serial:
            yield from self._transaction(write=write, snapshot=snapshot)
        if write and self._erase_pending:
            self.try_pending_checkpoint()

    def _transaction(self, *, write: bool, snapshot: bool) -> Iterator[Any]:
        files = self._files
        raw = files.get() if files is not None else self._engine.raw_connection()
        clean = False
        try:
            cursor = raw.cursor()
            if self.sqlite and (write or snapshot):
                cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
            except BaseException:
                raw.rollback()
                clean = True  # rolled back: the connection holds no transaction
                raise
            raw.commit()
            clean = True
        except self._errors as exc:
            raise StorageError(describe_driver_error(exc)) from None
        finally:
            if files is None:
                raw.close()
            elif clean:
                files.put(raw)
            else:  # a failed commit or rollback may still hold a lock: never reuse that connection
                raw.close()

    def checkpoint(self, wait_s: float | None = None) -> bool:
        """After forgetting: copy the write-ahead log into the SQLite file and truncate it, so no old page lingers.

        Another connection in the middle of a read keeps the log in use; after waiting `wait_s` (default
        CHECKPOINT_WAIT_S) for it this returns False, and the erase stays pending: the next writes, close
        and the next open try again. True when the log is empty (or there is none).
        """
        if not self.sqlite or self._files is None:
            return True  # PostgreSQL (VACUUM reclaims old row versions) or in-memory SQLite (no log)
        wait_ms = int(1000 * (CHECKPOINT_WAIT_S if wait_s is None else wait_s))
        with self._serial:
            raw = self._files.get()
            try:
                raw.execute(f"PRAGMA busy_timeout = {wait_ms}")
                busy, log_frames, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                raw.execute(f"PRAGMA busy_timeout = {int(database.SQLITE_BUSY_TIMEOUT_MS)}")
            except self._errors as exc:
                raw.close()
                raise StorageError(describe_driver_error(exc)) from None
            self._files.put(raw)
        # busy: a reader or writer kept it from finishing; a log of 0 frames held nothing, -1 means no WAL at all
        erased = not busy or log_frames <= 0
        self._erase_pending = not erased
        return erased

    def try_pending_checkpoint(self) -> None:
        """Try the erase again without waiting: after each write while one is pending, on close and on open."""
        try:
            self.checkpoint(wait_s=0)
        except StorageError:
            self._erase_pending = True  # still pending; the next write tries again

    # -- statements ---------------------------------------------------------------------------

    def owned(self, cursor: Any, user_id: str, conversation_id: int, *, lock: bool = False) -> None:
        """The conversation is the user's (else NotFound); `lock` holds its row on PostgreSQL until commit."""
        tail = " FOR UPDATE" if lock and not self.sqlite else ""  # SQLite writers already hold the database lock
        cursor.execute(
            self.sql(f"SELECT id FROM conversations WHERE id = ? AND user_id = ?{tail}"), (conversation_id, user_id)
        )
        if cursor.fetchone() is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")

    def conversation(self, cursor: Any, user_id: str, conversation_id: int) -> dict[str, Any]:
        cursor.execute(
            self.sql(f"SELECT {', '.join(CONVERSATION_COLUMNS)} FROM conversations WHERE id = ? AND user_id = ?"),
            (conversation_id, user_id),
        )
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        out = dict(zip(CONVERSATION_COLUMNS, row))
        out["created_at"], out["updated_at"] = self.read_stamp(out["created_at"]), self.read_stamp(out["updated_at"])
        return out

    def bump(
        self,
        cursor: Any,
        user_id: str,
        conversation_id: int,
        *,
        tokens: int,
        new_turn: bool,
        stamp: Any,
        full: bool = False,
    ) -> tuple[Any, ...]:
        """Count one more message on the conversation; returns (last_seq, last_turn) or, if `full`, the whole row."""
        key = ("bump", new_turn, full)
        sql = self._sql.get(key)
        if sql is None:
            turn_part = ", last_turn = last_turn + 1" if new_turn else ""
            returning = ", ".join(CONVERSATION_COLUMNS) if full else "last_seq, last_turn"
            sql = self._sql[key] = self.sql(
                "UPDATE conversations SET last_seq = last_seq + 1, message_count = message_count + 1, "
                f"token_total = token_total + ?, updated_at = ?{turn_part} WHERE id = ? AND user_id = ? "
                f"RETURNING {returning}"
            )
        cursor.execute(sql, (tokens, stamp, conversation_id, user_id))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        return row

    def conversation_row(self, row: tuple[Any, ...]) -> dict[str, Any]:
        """A full conversation row from `bump(full=True)` as a dict with aware datetimes."""
        out = dict(zip(CONVERSATION_COLUMNS, row))
        out["created_at"], out["updated_at"] = self.read_stamp(out["created_at"]), self.read_stamp(out["updated_at"])
        return out

    def insert_message(self, cursor: Any, values: Sequence[Any]) -> int:
        """One message row, its values already adapted, in MESSAGE_COLUMNS order without the id."""
        sql = self._sql.get("insert_message")
        if sql is None:
            columns = MESSAGE_COLUMNS[1:]
            sql = self._sql["insert_message"] = self.sql(
                f"INSERT INTO messages ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) RETURNING id"
            )
        cursor.execute(sql, values)
        return cursor.fetchone()[0]

    def insert(self, cursor: Any, table: str, values: dict[str, Any]) -> int:
        """One row; JSON columns of the ledger are encoded as SQLAlchemy's JSON type stores them."""
        columns = tuple(values)
        key = ("insert", table, columns)
        sql = self._sql.get(key)
        if sql is None:
            sql = self._sql[key] = self.sql(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) RETURNING id"
            )
        json_columns = JSON_CALL_COLUMNS if table == "model_calls" else frozenset()
        dumps, stamp = json.dumps, self.stamp
        adapted = [
            dumps(value)
            if column in json_columns and value is not None
            else stamp(value)
            if isinstance(value, datetime)
            else value
            for column, value in values.items()
        ]
        cursor.execute(sql, adapted)
        return cursor.fetchone()[0]

    def messages(
        self, cursor: Any, where: str, params: Sequence[Any], *, order: str, limit: int | None = None
    ) -> list[Message]:
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        cursor.execute(
            self.sql(f"SELECT {', '.join(READ_MESSAGE_COLUMNS)} FROM messages WHERE {where} ORDER BY {order}{tail}"),
            tuple(params),
        )
        read_stamp = self.read_stamp
        return [
            Message(
                id, conversation_id, seq, turn, role, content, status, tokens, tokenizer, read_stamp(created_at), error
            )
            for (
                id,
                conversation_id,
                seq,
                turn,
                role,
                content,
                status,
                tokens,
                tokenizer,
                created_at,
                error,
            ) in cursor.fetchall()
        ]

    def memory_from_turn(self, cursor: Any, conversation_id: int) -> int:
        """Where the conversation's memory starts (1, or the turn after its last clear)."""
        cursor.execute(self.sql("SELECT memory_from_turn FROM conversations WHERE id = ?"), (conversation_id,))
        row = cursor.fetchone()
        return int(row[0]) if row is not None else 1

    def latest_summary(
        self, cursor: Any, user_id: str, conversation_id: int, memory_type: str
    ) -> dict[str, Any] | None:
        cursor.execute(
            self.sql(
                f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM summaries WHERE conversation_id = ? "
                "AND user_id = ? AND memory_type = ? "
                "AND from_turn >= (SELECT memory_from_turn FROM conversations WHERE id = ?) ORDER BY id DESC LIMIT 1"
            ),
            (conversation_id, user_id, memory_type, conversation_id),
        )
        row = cursor.fetchone()
        if row is None:
            return None
        out = dict(zip(SUMMARY_COLUMNS, row))
        out["created_at"] = self.read_stamp(out["created_at"])
        return out
