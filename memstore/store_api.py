"""The storage contract Chat needs; SqlStore implements it over a SQLite file, SQLite in memory or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from .database_identity import DatabaseIdentity
from .records import (
    CallDraft,
    Conversation,
    Entity,
    ForgetPlan,
    MemorySettings,
    Message,
    MessageStatus,
    ModelCall,
    Preference,
    PreferenceChange,
    Summary,
    VectorScan,
)


@dataclass(frozen=True)
class NewMessage:
    """A message to import in bulk (export files, benchmarks)."""

    role: str
    content: str
    tokens: int
    tokenizer: str
    status: MessageStatus = "complete"
    created_at: datetime | None = None  # when the source says it was written; None: now


@dataclass(frozen=True)
class ImportedConversation:
    """A conversation to create with its messages, streamed: `messages` is read once, in order."""

    title: str
    settings: MemorySettings
    messages: Iterable[NewMessage]
    source: str | None = None  # where it came from, unique per user (see find_conversation)
    created_at: datetime | None = None


class TranscriptStore(Protocol):
    """Conversations, their append-only messages, summary versions and the model-call ledger.

    Every method takes the user id first and only ever sees that user's rows; another
    user's conversation raises NotFound, exactly like a missing one.
    """

    temporary: bool

    def identity(self) -> DatabaseIdentity: ...
    def create_conversation(self, user_id: str, title: str, settings: MemorySettings) -> Conversation: ...
    def get_conversation(self, user_id: str, conversation_id: int) -> Conversation: ...
    def list_conversations(
        self, user_id: str, *, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]: ...
    def rename_conversation(self, user_id: str, conversation_id: int, title: str) -> Conversation: ...
    def update_settings(self, user_id: str, conversation_id: int, settings: MemorySettings) -> Conversation: ...
    def delete_conversation(self, user_id: str, conversation_id: int) -> None: ...
    def clear_memory(self, user_id: str, conversation_id: int) -> Conversation: ...
    def undo_clear_memory(self, user_id: str, conversation_id: int) -> Conversation: ...
    def claim_retry(self, user_id: str, conversation_id: int, turn: int, *, hold_s: float) -> bool: ...
    def release_retry(self, user_id: str, conversation_id: int, turn: int) -> None: ...

    def add_user_message(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> Message: ...
    def begin_turn(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> tuple[Message, Conversation]: ...
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
        carried: Mapping[int, str] | None = None,
    ) -> tuple[Message, ModelCall | None]: ...
    def import_messages(self, user_id: str, conversation_id: int, messages: Sequence[NewMessage]) -> int: ...
    def import_conversations(
        self, user_id: str, conversations: Iterable[ImportedConversation], *, skip_existing: bool = False
    ) -> list[Conversation]: ...
    def find_conversation(self, user_id: str, *, source: str) -> Conversation | None: ...
    def find_sources(self, user_id: str, sources: Sequence[str]) -> dict[str, int]: ...
    def conversation_for_source(
        self, user_id: str, source: str, *, title: str, settings: MemorySettings
    ) -> Conversation: ...

    def last_turns(self, user_id: str, conversation_id: int, turns: int, *, through_turn: int) -> list[Message]: ...
    def turns_between(self, user_id: str, conversation_id: int, from_turn: int, to_turn: int) -> list[Message]: ...
    def page(
        self, user_id: str, conversation_id: int, *, limit: int = 50, before_seq: int | None = None
    ) -> list[Message]: ...

    def latest_summary(self, user_id: str, conversation_id: int, memory_type: str) -> Summary | None: ...
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
    ) -> tuple[Summary, ModelCall | None]: ...

    def record_call(self, user_id: str, call: CallDraft) -> ModelCall: ...
    def find_call(self, user_id: str, request_hash: str) -> ModelCall | None:
        """The newest successful reusable call (a summary or an extraction) with this exact request."""

    def calls_for_turn(self, user_id: str, conversation_id: int, turn: int) -> list[ModelCall]: ...
    def list_calls(
        self,
        user_id: str,
        *,
        conversation_id: int | None = None,
        purpose: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ModelCall]: ...

    def add_turn_vectors(
        self, user_id: str, conversation_id: int, embedder: str, vectors: Sequence[tuple[int, bytes]]
    ) -> int: ...
    def vector_watermark(self, user_id: str, conversation_id: int, embedder: str) -> int: ...
    def recent_vectors(
        self,
        user_id: str,
        embedder: str,
        *,
        conversation_id: int,
        before_turn: int,
        all_conversations: bool,
        limit: int,
    ) -> VectorScan: ...
    def add_entity_versions(
        self,
        user_id: str,
        conversation_id: int,
        updates: Sequence[tuple[str, str]],
        *,
        turn: int,
        call: CallDraft | None,
    ) -> tuple[list[Entity], ModelCall | None]: ...
    def list_entities(self, user_id: str, conversation_id: int, *, limit: int = 200) -> list[Entity]: ...

    def forget_plan(self, user_id: str, conversation_id: int, message_id: int) -> ForgetPlan: ...
    def journal_pending(self) -> bool: ...
    def forget_message(
        self, user_id: str, conversation_id: int, message_id: int, *, remove_facts: Sequence[int] = ()
    ) -> ForgetPlan: ...


class PreferenceStore(Protocol):
    """Per-user key/value facts kept in the database (custom memory)."""

    def list_preferences(self, user_id: str) -> list[Preference]: ...
    def set_preference(self, user_id: str, key: str, value: str, *, enabled: bool = True) -> Preference: ...
    def delete_preference(self, user_id: str, key: str) -> None: ...
    def replace_preferences(self, user_id: str, rows: Sequence[tuple[str, str, bool]]) -> list[Preference]: ...
    def apply_fact_changes(
        self,
        user_id: str,
        facts: Sequence[tuple[str, str]],
        *,
        conversation_id: int | None,
        turn: int | None,
        call_id: int | None,
    ) -> list[PreferenceChange]: ...
    def undo_preference_change(self, user_id: str, change_id: int) -> PreferenceChange: ...
    def preference_history(
        self, user_id: str, *, key: str | None = None, limit: int = 50
    ) -> list[PreferenceChange]: ...
