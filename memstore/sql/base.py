"""The SQL store's foundation: the engine, transactions, the hot path and the checks every part shares."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, Self

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from .. import validation
from ..config import Limits
from ..database import create_db_engine, create_memory_engine, describe_db_error, is_memory_engine, migrate
from ..database_identity import DatabaseIdentity, where_is
from ..errors import InvalidInput, NotFound, StorageError
from ..memory import MEMORY_TYPES
from ..records import (
    Conversation,
    MemorySettings,
    Message,
)
from ..schema import (
    ConversationRow,
    DatabaseIdentityRow,
)
from .hotpath import HotPath
from .rows import (
    _LAST_SEQ,
    _LAST_TURN,
    aware,
    conversation_record,
    hot_row,
)


class SqlBase:
    """One SQL database (SQLite file, SQLite in memory, PostgreSQL) and one transaction per unit of work."""

    """Conversations, messages, summaries, preferences and the ledger in one SQL database."""

    def __init__(
        self,
        engine: Engine,
        *,
        limits: Limits = Limits(),
        known_memory_types: frozenset[str] | None = None,
        temporary: bool = False,
    ):
        self._engine = engine
        self.temporary = temporary  # nothing here outlives the process: no automatic facts, no outbox
        # An in-memory database is one connection shared by every thread: one transaction at a time.
        self._serial: AbstractContextManager[Any] = threading.RLock() if is_memory_engine(engine) else nullcontext()
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(memstore_write=True)
        self._hot = HotPath(engine, serial=self._serial)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self.limits = limits
        self._known_types = known_memory_types
        self._identity: DatabaseIdentity | None = None

    @classmethod
    def open(cls, url: str, *, limits: Limits = Limits(), known_memory_types: frozenset[str] | None = None) -> Self:
        """Open (and migrate) the database at a SQLAlchemy URL."""
        engine = create_db_engine(url)
        migrate(engine)
        store = cls(engine, limits=limits, known_memory_types=known_memory_types)
        store._hot.try_pending_checkpoint()  # a log a reader kept in use when the last run forgot something
        store.identity()  # read (or given) at open: later, when a write is refused, it is already known
        return store

    @classmethod
    def in_memory(cls, *, limits: Limits = Limits(), known_memory_types: frozenset[str] | None = None) -> Self:
        """A temporary store: a private, migrated SQLite database in memory, gone when closed (or collected)."""
        return cls(create_memory_engine(), limits=limits, known_memory_types=known_memory_types, temporary=True)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._hot.close()
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def journal_pending(self) -> bool:
        """True while the SQLite write-ahead log may still hold forgotten text: another connection's read kept it
        in use. The next writes, close and the next open erase it."""
        return self._hot.erase_pending

    def identity(self) -> DatabaseIdentity:
        """Which database this is: its own random id (given when first opened) and where it is, without secrets."""
        if self._identity is None:
            self._identity = DatabaseIdentity(self._database_id(), where_is(self._engine.url))
        return self._identity

    def _database_id(self) -> str:
        """The id stored in the database; one is given when it has none (new, made before 0011, or emptied)."""
        read = select(DatabaseIdentityRow.id).where(DatabaseIdentityRow.one == 1)
        for _ in range(2):  # a second pass reads the id another process gave meanwhile
            try:
                with self._tx(write=False) as session:
                    found = session.scalar(read)
                if found:
                    return found
                with self._tx(write=True) as session:
                    found = session.scalar(read)
                    if found:
                        return found
                    given = uuid.uuid4().hex
                    session.execute(insert(DatabaseIdentityRow).values(one=1, id=given, created_at=datetime.now(UTC)))
                    return given
            except StorageError:
                continue
        return ""  # unknown (a database that refuses writes and has none): kept items belong nowhere

    def write_problem(self) -> str | None:
        """Why nothing could be saved right now (a read-only file or folder), or None when a write commits."""
        try:
            with self._hot.transaction(write=True) as cursor:
                if self._hot.sqlite:  # rewriting the header's user_version is a real, committed write
                    cursor.execute("PRAGMA user_version")
                    cursor.execute(f"PRAGMA user_version = {int(cursor.fetchone()[0])}")
                else:
                    cursor.execute("SELECT 1")
        except StorageError as exc:
            return str(exc)
        return None

    # -- transactions ---------------------------------------------------------------------

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Session]:
        """One transaction per unit of work; driver errors become a StorageError sentence."""
        factory = self._write if write else self._read
        try:
            with self._serial, factory() as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise StorageError(describe_db_error(exc)) from None
        if write and self._hot.erase_pending:
            self._hot.try_pending_checkpoint()

    def _append(
        self,
        cursor: Any,
        user_id: str,
        conversation_id: int,
        *,
        new_turn: bool,
        turn: int | None,
        role: str,
        content: str,
        status: str,
        tokens: int,
        tokenizer: str,
        error: str | None,
        now: datetime,
        with_conversation: bool = False,
    ) -> tuple[Message, Conversation | None]:
        """Count one more message on the conversation and insert it: two statements, no read-modify-write."""
        hot = self._hot
        stamp = hot.stamp(now)
        bumped = hot.bump(
            cursor, user_id, conversation_id, tokens=tokens, new_turn=new_turn, stamp=stamp, full=with_conversation
        )
        seq, last_turn = (bumped[_LAST_SEQ], bumped[_LAST_TURN]) if with_conversation else bumped
        turn = last_turn if new_turn else turn
        if turn is None or not 1 <= turn <= last_turn:
            raise InvalidInput(f"Turn {turn} does not exist in this conversation.")
        message_id = hot.insert_message(
            cursor, (conversation_id, user_id, seq, turn, role, content, status, error, tokens, tokenizer, stamp)
        )
        message = Message(
            id=message_id,
            conversation_id=conversation_id,
            seq=seq,
            turn=turn,
            role=role,  # type: ignore[arg-type]
            content=content,
            status=status,  # type: ignore[arg-type]
            tokens=tokens,
            tokenizer=tokenizer,
            created_at=aware(now),
            error=error,
        )
        conversation = (
            conversation_record(hot_row(hot.conversation_row(bumped)), self.temporary) if with_conversation else None
        )
        return message, conversation

    def _owned(self, session: Session, user_id: str, conversation_id: int, *, lock: bool = False) -> ConversationRow:
        query = select(ConversationRow).where(ConversationRow.id == conversation_id, ConversationRow.user_id == user_id)
        if lock:
            query = query.with_for_update()
        row = session.scalars(query).one_or_none()
        if row is None:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        return row

    def _settings(self, settings: MemorySettings) -> MemorySettings:
        known = self._known_types if self._known_types is not None else frozenset(MEMORY_TYPES)
        return validation.memory_settings(settings, known, self.limits)
