"""The persistent store: SQLAlchemy over SQLite or PostgreSQL, one transaction per unit of work."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from . import validation
from .config import Limits
from .database import create_db_engine, describe_db_error, migrate
from .embeddings import VECTOR_DTYPE
from .errors import InvalidInput, NotFound, StorageError
from .hotpath import CONVERSATION_COLUMNS, HotPath
from .memory import MEMORY_TYPES
from .records import (
    CACHED_PURPOSES,
    CallDraft,
    ChatMessage,
    Conversation,
    Entity,
    MemorySettings,
    Message,
    MessageStatus,
    ModelCall,
    Preference,
    PreferenceChange,
    Summary,
    Usage,
    VectorScan,
    request_hash,
)
from .schema import (
    ConversationRow,
    EntityRow,
    MessageRow,
    ModelCallRow,
    PreferenceChangeRow,
    PreferenceRow,
    SummaryRow,
    utcnow,
)
from .store_api import NewMessage

MAX_PAGE = 500
MAX_VECTOR_SCAN = 5_000  # turn vectors one recall may read
VECTOR_BLOCK_TURNS = 256  # turn vectors sealed into one row
MAX_ENTITIES = 200  # entities one read returns
STATUSES = ("complete", "partial", "failed")


def _row(values: dict[str, Any]) -> Any:
    """A hot-path row (a dict) read like an ORM row by the record builders."""
    return SimpleNamespace(**values)


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything leaving the store is UTC-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_LAST_SEQ, _LAST_TURN = CONVERSATION_COLUMNS.index("last_seq"), CONVERSATION_COLUMNS.index("last_turn")


def _conversation(row: ConversationRow) -> Conversation:
    return Conversation(
        id=row.id,
        user_id=row.user_id,
        title=row.title,
        settings=MemorySettings(
            row.memory_type,
            row.window_turns,
            row.max_tokens,
            row.system_prompt,
            row.recall_turns,
            row.recall_min_score,
            row.recall_scope,
        ),
        created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
        message_count=row.message_count,
        token_total=row.token_total,
        last_turn=row.last_turn,
    )


def _message(row: MessageRow) -> Message:
    return Message(
        id=row.id,
        conversation_id=row.conversation_id,
        seq=row.seq,
        turn=row.turn,
        role=row.role,  # type: ignore[arg-type]
        content=row.content,
        status=row.status,  # type: ignore[arg-type]
        tokens=row.tokens,
        tokenizer=row.tokenizer,
        created_at=_aware(row.created_at),
        error=row.error,
    )


def _summary(row: SummaryRow) -> Summary:
    return Summary(
        id=row.id,
        conversation_id=row.conversation_id,
        memory_type=row.memory_type,
        text=row.text,
        from_turn=row.from_turn,
        through_turn=row.through_turn,
        tokens=row.tokens,
        created_at=_aware(row.created_at),
        call_id=row.call_id,
    )


def _preference(row: PreferenceRow) -> Preference:
    return Preference(key=row.key, value=row.value, enabled=bool(row.enabled), updated_at=_aware(row.updated_at))


def _call(row: ModelCallRow) -> ModelCall:
    return ModelCall(
        id=row.id,
        user_id=row.user_id,
        created_at=_aware(row.created_at),
        purpose=row.purpose,  # type: ignore[arg-type]
        conversation_id=row.conversation_id,
        turn=row.turn,
        memory_type=row.memory_type,
        model=row.model,
        provider=row.provider,
        host=row.host,
        params=dict(row.params or {}),
        request=tuple(ChatMessage(m["role"], m["content"]) for m in row.request),  # type: ignore[arg-type]
        reply=row.reply,
        finish_reason=row.finish_reason,
        usage=Usage(row.prompt_tokens, row.completion_tokens, row.total_tokens),
        counted_prompt_tokens=row.counted_prompt_tokens,
        sections=dict(row.sections or {}),
        history_from_turn=row.history_from_turn,
        history_to_turn=row.history_to_turn,
        latency_ms=row.latency_ms,
        first_token_ms=row.first_token_ms,
        error_kind=row.error_kind,
        error=row.error,
        details=dict(row.details or {}),
    )


def _log_user_change(session: Session, user_id: str, key: str, old: str | None, new: str | None) -> None:
    """A preference edited by hand joins its history, so an older automatic change cannot be undone over it."""
    session.add(
        PreferenceChangeRow(user_id=user_id, key=key, old_value=old, new_value=new, source="user", created_at=utcnow())
    )


def _preference_change(row: PreferenceChangeRow) -> PreferenceChange:
    return PreferenceChange(
        row.id,
        row.key,
        row.old_value,
        row.new_value,
        row.source,
        row.conversation_id,
        row.turn,
        row.call_id,
        row.undoes,
        _aware(row.created_at),
    )


def _vector_scan(
    loose: Sequence[tuple[int, int, bytes]],
    blocks: Sequence[tuple[int, bytes, bytes]],
    *,
    conversation_id: int,
    before_turn: int,
    limit: int,
) -> VectorScan:
    """Loose rows and sealed blocks as one scan: this conversation's turns first (newest first), then others."""
    ids = [np.array([c for c, _, _ in loose], dtype=np.int64)]
    turns = [np.array([t for _, t, _ in loose], dtype=np.int64)]
    vectors = [np.frombuffer(b"".join(bytes(v) for _, _, v in loose), dtype=VECTOR_DTYPE)]
    for owner, block_turns, block_vectors in blocks:
        packed = np.frombuffer(bytes(block_turns), dtype=np.int32).astype(np.int64)
        ids.append(np.full(len(packed), owner, dtype=np.int64))
        turns.append(packed)
        vectors.append(np.frombuffer(bytes(block_vectors), dtype=VECTOR_DTYPE))
    all_ids, all_turns = np.concatenate(ids), np.concatenate(turns)
    if not len(all_turns):
        return VectorScan.empty()
    matrix = np.concatenate(vectors).reshape(len(all_turns), -1)
    kept = np.nonzero((all_ids != conversation_id) | (all_turns < before_turn))[0]
    # This conversation first, newest turn first; then the others, newest conversation and turn first.
    order = kept[np.lexsort((-all_turns[kept], -all_ids[kept], all_ids[kept] != conversation_id))]
    pairs = all_ids[order] * (1 << 32) + all_turns[order]
    _, first = np.unique(pairs, return_index=True)  # a turn read twice (sealed while being read) counts once
    order = order[np.sort(first)][:limit]
    return VectorScan(all_ids[order], all_turns[order], matrix[order])


def _draft_fields(call: CallDraft) -> dict:
    return {name: getattr(call, name) for name in CallDraft.__dataclass_fields__}


def _call_values(user_id: str, call: CallDraft, now: datetime) -> dict[str, Any]:
    """A ledger row's column values."""
    return dict(
        user_id=user_id,
        conversation_id=call.conversation_id,
        turn=call.turn,
        purpose=call.purpose,
        memory_type=call.memory_type,
        model=call.model,
        provider=call.provider,
        host=call.host,
        params=dict(call.params),
        request=[m.as_dict() for m in call.request],
        reply=call.reply,
        finish_reason=call.finish_reason,
        prompt_tokens=call.usage.prompt_tokens,
        completion_tokens=call.usage.completion_tokens,
        total_tokens=call.usage.total_tokens,
        counted_prompt_tokens=call.counted_prompt_tokens,
        sections=dict(call.sections),
        history_from_turn=call.history_from_turn,
        history_to_turn=call.history_to_turn,
        latency_ms=call.latency_ms,
        first_token_ms=call.first_token_ms,
        error_kind=call.error_kind,
        error=call.error,
        request_hash=request_hash(call.model, call.request, call.params) if call.purpose in CACHED_PURPOSES else None,
        details=dict(call.details) if call.details else None,
        created_at=now,
    )


def _call_row(user_id: str, call: CallDraft, now: datetime) -> ModelCallRow:
    return ModelCallRow(**_call_values(user_id, call, now))


def _add_call(session: Session, user_id: str, call: CallDraft | None, now: datetime) -> ModelCallRow | None:
    """Insert a ledger row in the caller's transaction (its id is needed by the rows that point at it)."""
    if call is None:
        return None
    row = _call_row(user_id, call, now)
    session.add(row)
    session.flush()
    return row


def check_page(limit: int, offset: int = 0) -> None:
    """Page sizes are bounded so no read can ask for a whole table."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"A page holds 1 to {MAX_PAGE} rows.")
    if offset < 0:
        raise InvalidInput("A page offset cannot be negative.")


class SqlStore:
    """Conversations, messages, summaries, preferences and the ledger in one SQL database."""

    temporary = False

    def __init__(self, engine: Engine, *, limits: Limits = Limits(), known_memory_types: frozenset[str] | None = None):
        self._engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write_engine = engine.execution_options(memstore_write=True)
        self._hot = HotPath(engine)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)
        self.limits = limits
        self._known_types = known_memory_types

    @classmethod
    def open(cls, url: str, *, limits: Limits = Limits(), known_memory_types: frozenset[str] | None = None) -> SqlStore:
        """Open (and migrate) the database at a SQLAlchemy URL."""
        engine = create_db_engine(url)
        migrate(engine)
        return cls(engine, limits=limits, known_memory_types=known_memory_types)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._hot.close()
        self._engine.dispose()

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
            with factory() as session, session.begin():
                yield session
        except DBAPIError as exc:
            raise StorageError(describe_db_error(exc)) from None

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
            created_at=_aware(now),
            error=error,
        )
        conversation = _conversation(_row(hot.conversation_row(bumped))) if with_conversation else None
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

    # -- conversations --------------------------------------------------------------------

    def create_conversation(self, user_id: str, title: str, settings: MemorySettings) -> Conversation:
        validation.user_id(user_id)
        title = validation.title(title, self.limits)
        settings = self._settings(settings)
        now = utcnow()
        with self._tx(write=True) as session:
            row = ConversationRow(
                user_id=user_id,
                title=title,
                memory_type=settings.memory_type,
                window_turns=settings.window_turns,
                max_tokens=settings.max_tokens,
                system_prompt=settings.system_prompt,
                recall_turns=settings.recall_turns,
                recall_min_score=float(settings.recall_min_score),
                recall_scope=settings.recall_scope,
                created_at=now,
                updated_at=now,
                last_seq=0,
                last_turn=0,
                message_count=0,
                token_total=0,
            )
            session.add(row)
            session.flush()
            return _conversation(row)

    def get_conversation(self, user_id: str, conversation_id: int) -> Conversation:
        with self._hot.transaction(write=False) as cursor:
            row = self._hot.conversation(cursor, user_id, conversation_id)
        return _conversation(_row(row))

    def list_conversations(
        self, user_id: str, *, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        check_page(limit, offset)
        query = select(ConversationRow).where(ConversationRow.user_id == user_id)
        if search and search.strip():
            query = query.where(func.lower(ConversationRow.title).contains(search.strip().lower(), autoescape=True))
        query = query.order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc()).limit(limit).offset(offset)
        with self._tx(write=False) as session:
            return [_conversation(row) for row in session.scalars(query)]

    def rename_conversation(self, user_id: str, conversation_id: int, title: str) -> Conversation:
        title = validation.title(title, self.limits)
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            row.title = title
            row.updated_at = utcnow()
            session.flush()
            return _conversation(row)

    def update_settings(self, user_id: str, conversation_id: int, settings: MemorySettings) -> Conversation:
        settings = self._settings(settings)
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            row.memory_type = settings.memory_type
            row.window_turns = settings.window_turns
            row.max_tokens = settings.max_tokens
            row.system_prompt = settings.system_prompt
            row.recall_turns = settings.recall_turns
            row.recall_min_score = float(settings.recall_min_score)
            row.recall_scope = settings.recall_scope
            session.flush()
            return _conversation(row)

    def claim_retry(self, user_id: str, conversation_id: int, turn: int, *, hold_s: float) -> bool:
        """Claim a turn for one retry; False when another retry of it is still running (or holds its claim)."""
        now = utcnow()
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            until = _aware(row.retry_until) if row.retry_until is not None else None
            if row.retry_turn == turn and until is not None and until > now:
                return False
            row.retry_turn, row.retry_until = turn, now + timedelta(seconds=hold_s)
            return True

    def release_retry(self, user_id: str, conversation_id: int, turn: int) -> None:
        """End a retry's claim on its turn (a deleted conversation has nothing to release)."""
        with self._tx(write=True) as session:
            session.execute(
                update(ConversationRow)
                .where(
                    ConversationRow.id == conversation_id,
                    ConversationRow.user_id == user_id,
                    ConversationRow.retry_turn == turn,
                )
                .values(retry_turn=None, retry_until=None)
            )

    def delete_conversation(self, user_id: str, conversation_id: int) -> None:
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            session.delete(row)

    # -- messages ---------------------------------------------------------------------------

    def add_user_message(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> Message:
        content = validation.message_text(content, self.limits)
        with self._hot.transaction(write=True) as cursor:
            return self._append(
                cursor,
                user_id,
                conversation_id,
                new_turn=True,
                turn=None,
                role="user",
                content=content,
                status="complete",
                tokens=tokens,
                tokenizer=tokenizer,
                error=None,
                now=utcnow(),
            )[0]

    def begin_turn(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> tuple[Message, Conversation]:
        """Save the user's message as a new turn and return it with the conversation as it now stands."""
        content = validation.message_text(content, self.limits)
        with self._hot.transaction(write=True) as cursor:
            return self._append(
                cursor,
                user_id,
                conversation_id,
                new_turn=True,
                turn=None,
                role="user",
                content=content,
                status="complete",
                tokens=tokens,
                tokenizer=tokenizer,
                error=None,
                now=utcnow(),
                with_conversation=True,
            )  # type: ignore[return-value]

    def add_reply(
        self,
        user_id: str,
        conversation_id: int,
        turn: int,
        content: str,
        *,
        status: MessageStatus,
        tokens: int,
        tokenizer: str,
        error: str | None = None,
        call: CallDraft | None = None,
    ) -> tuple[Message, ModelCall | None]:
        if status not in STATUSES:
            raise InvalidInput(f"Unknown message status {status!r}.")
        if "\x00" in content:
            content = content.replace("\x00", "\ufffd")
        now = utcnow()
        with self._hot.transaction(write=True) as cursor:
            message, _ = self._append(
                cursor,
                user_id,
                conversation_id,
                new_turn=False,
                turn=turn,
                role="assistant",
                content=content,
                status=status,
                tokens=tokens,
                tokenizer=tokenizer,
                error=error,
                now=now,
            )
            if call is None:
                return message, None
            call_id = self._hot.insert(cursor, "model_calls", _call_values(user_id, call, now))
            return message, ModelCall(**_draft_fields(call), id=call_id, user_id=user_id, created_at=_aware(now))

    def import_messages(self, user_id: str, conversation_id: int, messages: Sequence[NewMessage]) -> int:
        """Append many messages in one transaction; a user message starts each new turn."""
        for m in messages:
            if m.role not in ("user", "assistant"):
                raise InvalidInput(f"Cannot import a message with role {m.role!r}.")
            if m.status not in STATUSES:
                raise InvalidInput(f"Cannot import a message with status {m.status!r}.")
            if m.role == "user":
                validation.message_text(m.content, self.limits)
            elif "\x00" in m.content:
                raise InvalidInput("An imported message contains a NUL byte.")
        now = utcnow()
        with self._tx(write=True) as session:
            conv = self._owned(session, user_id, conversation_id, lock=True)
            rows = []
            for m in messages:
                if m.role == "user" or conv.last_turn == 0:
                    conv.last_turn += 1
                conv.last_seq += 1
                conv.message_count += 1
                conv.token_total += m.tokens
                rows.append(
                    dict(
                        conversation_id=conv.id,
                        user_id=user_id,
                        seq=conv.last_seq,
                        turn=conv.last_turn,
                        role=m.role,
                        content=m.content,
                        status=m.status,
                        error=None,
                        tokens=m.tokens,
                        tokenizer=m.tokenizer,
                        created_at=now,
                    )
                )
            conv.updated_at = now
            if rows:
                session.execute(insert(MessageRow), rows)
            return len(rows)

    def last_turns(self, user_id: str, conversation_id: int, turns: int, *, through_turn: int) -> list[Message]:
        """Messages of the `turns` turns ending at `through_turn`: one indexed range read."""
        if turns <= 0 or through_turn <= 0:
            self.get_conversation(user_id, conversation_id)
            return []
        return self.turns_between(user_id, conversation_id, max(1, through_turn - turns + 1), through_turn)

    def turns_between(self, user_id: str, conversation_id: int, from_turn: int, to_turn: int) -> list[Message]:
        """Messages of turns [from_turn, to_turn], in order: one indexed range read."""
        with self._hot.transaction(write=False) as cursor:
            rows = self._hot.messages(
                cursor,
                "conversation_id = ? AND user_id = ? AND turn >= ? AND turn <= ?",
                (conversation_id, user_id, from_turn, to_turn),
                order="seq",
            )
            if not rows:
                self._hot.owned(cursor, user_id, conversation_id)
        return rows

    def page(
        self, user_id: str, conversation_id: int, *, limit: int = 50, before_seq: int | None = None
    ) -> list[Message]:
        """The newest `limit` messages before `before_seq`, oldest first."""
        check_page(limit)
        where, params = "conversation_id = ? AND user_id = ?", [conversation_id, user_id]
        if before_seq is not None:
            where, params = where + " AND seq < ?", params + [before_seq]
        with self._hot.transaction(write=False) as cursor:
            rows = self._hot.messages(cursor, where, params, order="seq DESC", limit=limit)
            if not rows:
                self._hot.owned(cursor, user_id, conversation_id)
        rows.reverse()
        return rows

    # -- summaries ------------------------------------------------------------------------------

    def latest_summary(self, user_id: str, conversation_id: int, memory_type: str) -> Summary | None:
        with self._hot.transaction(write=False) as cursor:
            row = self._hot.latest_summary(cursor, user_id, conversation_id, memory_type)
            if row is None:
                self._hot.owned(cursor, user_id, conversation_id)
        return _summary(_row(row)) if row is not None else None

    def add_summary(
        self,
        user_id: str,
        conversation_id: int,
        memory_type: str,
        text: str,
        *,
        from_turn: int,
        through_turn: int,
        tokens: int,
        call: CallDraft | None,
    ) -> tuple[Summary, ModelCall | None]:
        now = utcnow()
        with self._tx(write=True) as session:
            self._owned(session, user_id, conversation_id)
            call_row = _add_call(session, user_id, call, now)
            row = SummaryRow(
                conversation_id=conversation_id,
                user_id=user_id,
                memory_type=memory_type,
                text=text,
                from_turn=from_turn,
                through_turn=through_turn,
                tokens=tokens,
                call_id=call_row.id if call_row is not None else None,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return _summary(row), (_call(call_row) if call_row is not None else None)

    # -- ledger ---------------------------------------------------------------------------------

    def record_call(self, user_id: str, call: CallDraft) -> ModelCall:
        validation.user_id(user_id)
        now = utcnow()
        with self._tx(write=True) as session:
            if call.conversation_id is not None:
                self._owned(session, user_id, call.conversation_id)
            row = _call_row(user_id, call, now)
            session.add(row)
            session.flush()
            return _call(row)

    def list_calls(
        self,
        user_id: str,
        *,
        conversation_id: int | None = None,
        purpose: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ModelCall]:
        check_page(limit, offset)
        query = select(ModelCallRow).where(ModelCallRow.user_id == user_id)
        if conversation_id is not None:
            query = query.where(ModelCallRow.conversation_id == conversation_id)
        if purpose is not None:
            query = query.where(ModelCallRow.purpose == purpose)
        query = query.order_by(ModelCallRow.id.desc()).limit(limit).offset(offset)
        with self._tx(write=False) as session:
            return [_call(row) for row in session.scalars(query)]

    def calls_for_turn(self, user_id: str, conversation_id: int, turn: int) -> list[ModelCall]:
        """Every model call made for one turn of a conversation, oldest first (an indexed read)."""
        query = (
            select(ModelCallRow)
            .where(
                ModelCallRow.conversation_id == conversation_id,
                ModelCallRow.turn == turn,
                ModelCallRow.user_id == user_id,
            )
            .order_by(ModelCallRow.id)
            .limit(MAX_PAGE)
        )
        with self._tx(write=False) as session:
            self._owned(session, user_id, conversation_id)
            return [_call(row) for row in session.scalars(query)]

    def find_call(self, user_id: str, request_hash: str) -> ModelCall | None:
        """The newest successful call with exactly this request (a replay's summary cache)."""
        query = (
            select(ModelCallRow)
            .where(
                ModelCallRow.user_id == user_id, ModelCallRow.request_hash == request_hash, ModelCallRow.error.is_(None)
            )
            .order_by(ModelCallRow.id.desc())
            .limit(1)
        )
        with self._tx(write=False) as session:
            row = session.scalars(query).one_or_none()
            return _call(row) if row is not None else None

    # -- turn vectors (retrieval memory) ---------------------------------------------------------

    def add_turn_vectors(
        self, user_id: str, conversation_id: int, embedder: str, vectors: Sequence[tuple[int, bytes]]
    ) -> int:
        """Store embeddings of past turns, once each; every VECTOR_BLOCK_TURNS of them are sealed into one row."""
        if not vectors:
            return 0
        hot = self._hot
        stamp = hot.stamp(utcnow())
        with hot.transaction(write=True) as cursor:
            hot.owned(cursor, user_id, conversation_id, lock=True)  # one indexer per conversation at a time
            cursor.execute(
                hot.sql("SELECT MAX(last_turn) FROM turn_vector_blocks WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            sealed = cursor.fetchone()[0] or 0
            vectors = [(turn, vector) for turn, vector in vectors if turn > sealed]  # sealed runs are final
            if not vectors:
                return 0
            cursor.executemany(
                hot.sql(
                    "INSERT INTO turn_vectors (user_id, conversation_id, turn, embedder, vector, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (conversation_id, embedder, turn) DO NOTHING"
                ),
                [(user_id, conversation_id, turn, embedder, vector, stamp) for turn, vector in vectors],
            )
            added = max(cursor.rowcount, 0)  # psycopg and sqlite3 both sum an executemany's rows
            self._seal_vector_blocks(cursor, user_id, conversation_id, embedder, stamp)
            return added

    def _seal_vector_blocks(self, cursor: Any, user_id: str, conversation_id: int, embedder: str, stamp: Any) -> None:
        """Pack the oldest loose vectors into blocks of VECTOR_BLOCK_TURNS once that many have gathered."""
        hot = self._hot
        cursor.execute(
            hot.sql("SELECT COUNT(*) FROM turn_vectors WHERE conversation_id = ? AND embedder = ?"),
            (conversation_id, embedder),
        )
        if cursor.fetchone()[0] < VECTOR_BLOCK_TURNS:
            return  # the usual case after a turn: count the loose rows (an index range), read none
        cursor.execute(
            hot.sql(
                "SELECT turn, vector FROM turn_vectors WHERE conversation_id = ? AND embedder = ? ORDER BY turn LIMIT ?"
            ),
            (conversation_id, embedder, MAX_VECTOR_SCAN + VECTOR_BLOCK_TURNS),
        )
        loose = cursor.fetchall()
        for start in range(0, len(loose) - VECTOR_BLOCK_TURNS + 1, VECTOR_BLOCK_TURNS):
            block = loose[start : start + VECTOR_BLOCK_TURNS]
            turns = np.array([turn for turn, _ in block], dtype=np.int32)
            cursor.execute(
                hot.sql(
                    "INSERT INTO turn_vector_blocks (user_id, conversation_id, embedder, first_turn, last_turn, turns, "
                    "vectors, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    user_id,
                    conversation_id,
                    embedder,
                    int(turns[0]),
                    int(turns[-1]),
                    turns.tobytes(),
                    b"".join(bytes(vector) for _, vector in block),
                    stamp,
                ),
            )
            cursor.execute(
                hot.sql(
                    "DELETE FROM turn_vectors WHERE conversation_id = ? AND embedder = ? AND turn >= ? AND turn <= ?"
                ),
                (conversation_id, embedder, int(turns[0]), int(turns[-1])),
            )

    def vector_watermark(self, user_id: str, conversation_id: int, embedder: str) -> int:
        """The newest turn of the conversation with a stored vector for this embedder (0 when none)."""
        hot = self._hot
        with hot.transaction(write=False, snapshot=True) as cursor:
            hot.owned(cursor, user_id, conversation_id)
            cursor.execute(
                hot.sql("SELECT MAX(turn) FROM turn_vectors WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            loose = cursor.fetchone()[0]
            cursor.execute(
                hot.sql("SELECT MAX(last_turn) FROM turn_vector_blocks WHERE conversation_id = ? AND embedder = ?"),
                (conversation_id, embedder),
            )
            sealed = cursor.fetchone()[0]
        return max(loose or 0, sealed or 0)

    def recent_vectors(
        self,
        user_id: str,
        embedder: str,
        *,
        conversation_id: int,
        before_turn: int,
        all_conversations: bool,
        limit: int,
    ) -> VectorScan:
        """About the newest `limit` stored turn vectors: of this conversation before `before_turn`, or of all of
        the user's conversations (this one still only before `before_turn`). A few indexed, bounded reads."""
        if not 1 <= limit <= MAX_VECTOR_SCAN:
            raise InvalidInput(f"A vector scan reads 1 to {MAX_VECTOR_SCAN:,} turns.")
        hot = self._hot
        blocks_needed = limit // VECTOR_BLOCK_TURNS + 1
        own = "conversation_id = ? AND user_id = ? AND embedder = ?"
        others = "user_id = ? AND embedder = ? AND conversation_id <> ?"
        with hot.transaction(write=False, snapshot=True) as cursor:  # loose rows and blocks from one snapshot
            hot.owned(cursor, user_id, conversation_id)
            cursor.execute(
                hot.sql(
                    f"SELECT conversation_id, turn, vector FROM turn_vectors WHERE {own} AND turn < ? "
                    "ORDER BY turn DESC LIMIT ?"
                ),
                (conversation_id, user_id, embedder, before_turn, int(limit)),
            )
            loose = cursor.fetchall()
            cursor.execute(
                hot.sql(
                    f"SELECT conversation_id, turns, vectors FROM turn_vector_blocks WHERE {own} "
                    "AND first_turn < ? ORDER BY last_turn DESC LIMIT ?"
                ),
                (conversation_id, user_id, embedder, before_turn, blocks_needed),
            )
            blocks = cursor.fetchall()
            if all_conversations:  # then the user's other conversations, most recently stored first
                cursor.execute(
                    hot.sql(
                        f"SELECT conversation_id, turn, vector FROM turn_vectors WHERE {others} "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (user_id, embedder, conversation_id, int(limit)),
                )
                loose += cursor.fetchall()
                cursor.execute(
                    hot.sql(
                        f"SELECT conversation_id, turns, vectors FROM turn_vector_blocks WHERE {others} "
                        "ORDER BY id DESC LIMIT ?"
                    ),
                    (user_id, embedder, conversation_id, blocks_needed),
                )
                blocks += cursor.fetchall()
        return _vector_scan(loose, blocks, conversation_id=conversation_id, before_turn=before_turn, limit=limit)

    # -- entities (entity memory) ---------------------------------------------------------------

    def add_entity_versions(
        self,
        user_id: str,
        conversation_id: int,
        updates: Sequence[tuple[str, str]],
        *,
        turn: int,
        call: CallDraft | None,
    ) -> tuple[list[Entity], ModelCall | None]:
        """New versions of entity summaries from one turn, with the extraction call, in one transaction."""
        cleaned = [(validation.entity_name(name), validation.entity_summary(summary)) for name, summary in updates]
        now = utcnow()
        with self._tx(write=True) as session:
            self._owned(session, user_id, conversation_id)
            call_row = _add_call(session, user_id, call, now)
            for name, summary in cleaned:
                session.add(
                    EntityRow(
                        user_id=user_id,
                        conversation_id=conversation_id,
                        name=name,
                        name_key=name.casefold(),
                        summary=summary,
                        turn=turn,
                        call_id=call_row.id if call_row is not None else None,
                        created_at=now,
                    )
                )
            session.flush()
            saved = _call(call_row) if call_row is not None else None
        keys = {name.casefold() for name, _ in cleaned}
        return [e for e in self.list_entities(user_id, conversation_id) if e.name.casefold() in keys], saved

    def list_entities(self, user_id: str, conversation_id: int, *, limit: int = MAX_ENTITIES) -> list[Entity]:
        """Current entities of a conversation (newest version of each), most recently updated first."""
        newest = (
            select(func.max(EntityRow.id).label("id"), func.count().label("versions"))
            .where(EntityRow.conversation_id == conversation_id, EntityRow.user_id == user_id)
            .group_by(EntityRow.name_key)
            .subquery()
        )
        query = (
            select(EntityRow, newest.c.versions)
            .join(newest, EntityRow.id == newest.c.id)
            .order_by(EntityRow.id.desc())
            .limit(limit)
        )
        with self._tx(write=False) as session:
            self._owned(session, user_id, conversation_id)
            return [
                Entity(row.name, row.summary, row.turn, versions, _aware(row.created_at))
                for row, versions in session.execute(query)
            ]

    # -- preferences ----------------------------------------------------------------------------

    def list_preferences(self, user_id: str) -> list[Preference]:
        query = (
            select(PreferenceRow).where(PreferenceRow.user_id == user_id).order_by(PreferenceRow.key).limit(MAX_PAGE)
        )
        with self._tx(write=False) as session:
            return [_preference(row) for row in session.scalars(query)]

    def set_preference(self, user_id: str, key: str, value: str, *, enabled: bool = True) -> Preference:
        validation.user_id(user_id)
        key = validation.fact_key(key, self.limits)
        value = validation.fact_value(value, self.limits)
        with self._tx(write=True) as session:
            row = session.scalars(
                select(PreferenceRow)
                .where(PreferenceRow.user_id == user_id, PreferenceRow.key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                self._check_preference_room(session, user_id, adding=1)
                row = PreferenceRow(user_id=user_id, key=key, value=value, enabled=enabled, updated_at=utcnow())
                session.add(row)
                _log_user_change(session, user_id, key, None, value)
            elif row.value != value or bool(row.enabled) != enabled:
                if row.value != value:
                    _log_user_change(session, user_id, key, row.value, value)
                row.value, row.enabled, row.updated_at = value, enabled, utcnow()
            session.flush()
            return _preference(row)

    def delete_preference(self, user_id: str, key: str) -> None:
        with self._tx(write=True) as session:
            row = session.scalars(
                select(PreferenceRow)
                .where(PreferenceRow.user_id == user_id, PreferenceRow.key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"No preference named {key!r}.")
            _log_user_change(session, user_id, key, row.value, None)
            session.delete(row)

    def replace_preferences(self, user_id: str, rows: Sequence[tuple[str, str, bool]]) -> list[Preference]:
        """Make the user's preferences exactly `rows` in one transaction (the editor's save)."""
        validation.user_id(user_id)
        cleaned: dict[str, tuple[str, bool]] = {}
        for key, value, enabled in rows:
            key = validation.fact_key(key, self.limits)
            if key in cleaned:
                raise InvalidInput(f"The key {key!r} appears twice.")
            cleaned[key] = (validation.fact_value(value, self.limits), bool(enabled))
        if len(cleaned) > MAX_PAGE:
            raise InvalidInput(f"A user can keep at most {MAX_PAGE} preferences.")
        now = utcnow()
        with self._tx(write=True) as session:
            existing = {
                row.key: row
                for row in session.scalars(
                    select(PreferenceRow).where(PreferenceRow.user_id == user_id).with_for_update()
                )
            }
            for key, row in existing.items():
                if key not in cleaned:
                    _log_user_change(session, user_id, key, row.value, None)
                    session.delete(row)
            for key, (value, enabled) in cleaned.items():
                found = existing.get(key)
                if found is None:
                    session.add(PreferenceRow(user_id=user_id, key=key, value=value, enabled=enabled, updated_at=now))
                    _log_user_change(session, user_id, key, None, value)
                elif found.value != value or bool(found.enabled) != enabled:
                    if found.value != value:
                        _log_user_change(session, user_id, key, found.value, value)
                    found.value, found.enabled, found.updated_at = value, enabled, now
        return self.list_preferences(user_id)

    def apply_fact_changes(
        self,
        user_id: str,
        facts: Sequence[tuple[str, str]],
        *,
        conversation_id: int | None,
        turn: int | None,
        call_id: int | None,
    ) -> list[PreferenceChange]:
        """Save extracted facts as preferences; each new or changed value is logged with what it replaced."""
        validation.user_id(user_id)
        cleaned: dict[str, str] = {}
        for key, value in facts:
            cleaned[validation.fact_key(key, self.limits)] = validation.fact_value(value, self.limits)
        now = utcnow()
        changes: list[PreferenceChangeRow] = []
        with self._tx(write=True) as session:
            existing = {
                row.key: row
                for row in session.scalars(
                    select(PreferenceRow)
                    .where(PreferenceRow.user_id == user_id, PreferenceRow.key.in_(list(cleaned)))
                    .with_for_update()
                )
            }
            new_keys = [k for k in cleaned if k not in existing]
            if new_keys:
                self._check_preference_room(session, user_id, adding=len(new_keys))
            for key, value in cleaned.items():
                row = existing.get(key)
                if row is not None and row.value == value:
                    continue  # already known: no change, no notice
                old = row.value if row is not None else None
                if row is None:
                    session.add(PreferenceRow(user_id=user_id, key=key, value=value, enabled=True, updated_at=now))
                else:
                    row.value, row.updated_at = value, now
                change = PreferenceChangeRow(
                    user_id=user_id,
                    key=key,
                    old_value=old,
                    new_value=value,
                    source="auto",
                    conversation_id=conversation_id,
                    turn=turn,
                    call_id=call_id,
                    created_at=now,
                )
                session.add(change)
                changes.append(change)
            session.flush()
            return [_preference_change(c) for c in changes]

    def undo_preference_change(self, user_id: str, change_id: int) -> PreferenceChange:
        """Put a preference back as it was before one change (removing it if the change added it), and log that."""
        now = utcnow()
        with self._tx(write=True) as session:
            change = session.scalars(
                select(PreferenceChangeRow).where(
                    PreferenceChangeRow.id == change_id, PreferenceChangeRow.user_id == user_id
                )
            ).one_or_none()
            if change is None:
                raise NotFound(f"No memory change {change_id}.")
            row = session.scalars(
                select(PreferenceRow)
                .where(PreferenceRow.user_id == user_id, PreferenceRow.key == change.key)
                .with_for_update()
            ).one_or_none()
            newest = session.scalar(
                select(func.max(PreferenceChangeRow.id)).where(
                    PreferenceChangeRow.user_id == user_id, PreferenceChangeRow.key == change.key
                )
            )
            current = row.value if row is not None else None
            if change.source == "undo" or newest != change.id or current != change.new_value:
                raise InvalidInput(f"{change.key!r} has changed since; edit it on the Preferences page instead.")
            if change.old_value is None:
                if row is not None:
                    session.delete(row)
            elif row is None:
                session.add(
                    PreferenceRow(user_id=user_id, key=change.key, value=change.old_value, enabled=True, updated_at=now)
                )
            else:
                row.value, row.updated_at = change.old_value, now
            undo = PreferenceChangeRow(
                user_id=user_id,
                key=change.key,
                old_value=current,
                new_value=change.old_value,
                source="undo",
                conversation_id=change.conversation_id,
                turn=change.turn,
                call_id=None,
                undoes=change.id,
                created_at=now,
            )
            session.add(undo)
            session.flush()
            return _preference_change(undo)

    def preference_history(self, user_id: str, *, key: str | None = None, limit: int = 50) -> list[PreferenceChange]:
        """Changes to the user's preferences, newest first (one key's, or all)."""
        check_page(limit)
        query = select(PreferenceChangeRow).where(PreferenceChangeRow.user_id == user_id)
        if key is not None:
            query = query.where(PreferenceChangeRow.key == key)
        query = query.order_by(PreferenceChangeRow.id.desc()).limit(limit)
        with self._tx(write=False) as session:
            return [_preference_change(row) for row in session.scalars(query)]

    def _check_preference_room(self, session: Session, user_id: str, *, adding: int) -> None:
        count = session.scalar(select(func.count()).select_from(PreferenceRow).where(PreferenceRow.user_id == user_id))
        if (count or 0) + adding > MAX_PAGE:
            raise InvalidInput(f"A user can keep at most {MAX_PAGE} preferences.")
