"""SQLAlchemy tables; private to memstore (the store returns records, never these)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class ConversationRow(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    memory_type: Mapped[str] = mapped_column(String(32))
    window_turns: Mapped[int] = mapped_column(Integer)
    max_tokens: Mapped[int] = mapped_column(Integer)
    system_prompt: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seq: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_turn: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    message_count: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    token_total: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    recall_turns: Mapped[int] = mapped_column(Integer, server_default=text("3"))
    recall_min_score: Mapped[float] = mapped_column(Float, server_default=text("0.1"))
    recall_scope: Mapped[str] = mapped_column(String(16), server_default=text("'conversation'"))
    retry_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a retry of this turn is running
    retry_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    memory_from_turn: Mapped[int] = mapped_column(Integer, server_default=text("1"))  # memory reads start here
    memory_undo_from: Mapped[int | None] = mapped_column(Integer, nullable=True)  # before the last clear
    source: Mapped[str | None] = mapped_column(String(500), nullable=True)  # imported from, or a LangChain session

    __table_args__ = (
        Index("ix_conversations_user_updated", "user_id", "updated_at"),
        Index("ux_conversations_user_source", "user_id", "source", unique=True),
    )


class MessageRow(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    seq: Mapped[int] = mapped_column(Integer)
    turn: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    tokens: Mapped[int] = mapped_column(Integer)
    tokenizer: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_messages_conversation_seq"),
        Index("ix_messages_conversation_turn", "conversation_id", "turn"),
    )


class SummaryRow(Base):
    __tablename__ = "summaries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(200))
    memory_type: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text)
    from_turn: Mapped[int] = mapped_column(Integer)
    through_turn: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("model_calls.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_summaries_conversation_type", "conversation_id", "memory_type", "id"),)


class PreferenceRow(Base):
    __tablename__ = "preferences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=true())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_preferences_user_key"),)


class UserFlagRow(Base):
    """Something the app remembers about a user that is not memory: the tour dismissed, for one."""

    __tablename__ = "user_flags"

    user_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    set_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DatabaseIdentityRow(Base):
    """The database's own random id, one row, given when it is first opened: outbox items name it (memstore.outbox)."""

    __tablename__ = "database_identity"

    one: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # always 1: one row
    id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelCallRow(Base):
    __tablename__ = "model_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), nullable=True
    )
    turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    purpose: Mapped[str] = mapped_column(String(16))
    memory_type: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(32))
    host: Mapped[str] = mapped_column(String(300))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    request: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    reply: Mapped[str] = mapped_column(Text)
    finish_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    total_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    counted_prompt_tokens: Mapped[int | None] = mapped_column(Integer, nullable=True)
    sections: Mapped[dict[str, int]] = mapped_column(JSON)
    history_from_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    history_to_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    latency_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    first_token_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_model_calls_user_conversation", "user_id", "conversation_id", "id"),
        Index("ix_model_calls_conversation_turn", "conversation_id", "turn"),
        Index("ix_model_calls_conversation_purpose", "user_id", "conversation_id", "purpose", "id"),
        Index("ix_model_calls_user_purpose", "user_id", "purpose", "id"),
        Index(
            "ix_model_calls_user_request_hash",
            "user_id",
            "request_hash",
            sqlite_where=text("request_hash IS NOT NULL"),
            postgresql_where=text("request_hash IS NOT NULL"),
        ),
    )


class TurnVectorRow(Base):
    """One embedding per past turn (the user's message and the reply that counts), computed once."""

    __tablename__ = "turn_vectors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    turn: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str] = mapped_column(String(200))
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("conversation_id", "embedder", "turn", name="uq_turn_vectors_conversation_embedder_turn"),
        Index("ix_turn_vectors_user_embedder", "user_id", "embedder", "id"),
    )


class TurnVectorBlockRow(Base):
    """Sealed runs of turn vectors packed into one row, so a recall reads a few rows instead of thousands."""

    __tablename__ = "turn_vector_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    embedder: Mapped[str] = mapped_column(String(200))
    first_turn: Mapped[int] = mapped_column(Integer)
    last_turn: Mapped[int] = mapped_column(Integer)
    turns: Mapped[bytes] = mapped_column(LargeBinary)
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        UniqueConstraint("conversation_id", "embedder", "first_turn", name="uq_turn_vector_blocks_first_turn"),
        Index("ix_turn_vector_blocks_conversation", "conversation_id", "embedder", "last_turn"),
        Index("ix_turn_vector_blocks_user_embedder", "user_id", "embedder", "id"),
    )


class PreferenceChangeRow(Base):
    """Every change to a preference, by the user, by automatic facts or by an undo: nothing is lost."""

    __tablename__ = "preference_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    new_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    source: Mapped[str] = mapped_column(String(16))
    conversation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    call_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    undoes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        Index("ix_preference_changes_user_key", "user_id", "key", "id"),
        Index("ix_preference_changes_user", "user_id", "id"),
    )


class EntityRow(Base):
    """A version of an entity's running summary; the newest per name is current."""

    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text)
    turn: Mapped[int] = mapped_column(Integer)
    call_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_entities_conversation_name", "conversation_id", "name_key", "id"),)
