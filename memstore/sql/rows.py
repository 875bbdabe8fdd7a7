"""Rows to records and back, and the bounds every read obeys: shared by the parts of the SQL store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy.orm import Session

from ..embeddings import VECTOR_DTYPE
from ..errors import InvalidInput
from ..records import (
    CACHED_PURPOSES,
    CallDraft,
    ChatMessage,
    Conversation,
    MemorySettings,
    Message,
    ModelCall,
    Preference,
    PreferenceChange,
    Summary,
    Usage,
    VectorScan,
    request_hash,
)
from ..schema import (
    ConversationRow,
    MessageRow,
    ModelCallRow,
    PreferenceChangeRow,
    PreferenceRow,
    SummaryRow,
    utcnow,
)
from .hotpath import CONVERSATION_COLUMNS

MAX_PAGE = 500
MAX_VECTOR_SCAN = 5_000  # turn vectors one recall may read
VECTOR_BLOCK_TURNS = 256  # turn vectors sealed into one row
MAX_ENTITIES = 200  # entities one read returns
STATUSES = ("complete", "partial", "failed")


def hot_row(values: dict[str, Any]) -> Any:
    """A hot-path row (a dict) read like an ORM row by the record builders."""
    return SimpleNamespace(**values)


def aware(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything leaving the store is UTC-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


_LAST_SEQ, _LAST_TURN = CONVERSATION_COLUMNS.index("last_seq"), CONVERSATION_COLUMNS.index("last_turn")


def conversation_record(row: ConversationRow, temporary: bool) -> Conversation:
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
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        message_count=row.message_count,
        token_total=row.token_total,
        last_turn=row.last_turn,
        temporary=temporary,
        memory_from_turn=row.memory_from_turn,
    )


def message_record(row: MessageRow) -> Message:
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
        created_at=aware(row.created_at),
        error=row.error,
    )


def summary_record(row: SummaryRow) -> Summary:
    return Summary(
        id=row.id,
        conversation_id=row.conversation_id,
        memory_type=row.memory_type,
        text=row.text,
        from_turn=row.from_turn,
        through_turn=row.through_turn,
        tokens=row.tokens,
        created_at=aware(row.created_at),
        call_id=row.call_id,
    )


def preference_record(row: PreferenceRow) -> Preference:
    return Preference(key=row.key, value=row.value, enabled=bool(row.enabled), updated_at=aware(row.updated_at))


def call_record(row: ModelCallRow) -> ModelCall:
    return ModelCall(
        id=row.id,
        user_id=row.user_id,
        created_at=aware(row.created_at),
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


def log_user_change(session: Session, user_id: str, key: str, old: str | None, new: str | None) -> None:
    """A preference edited by hand joins its history, so an older automatic change cannot be undone over it."""
    session.add(
        PreferenceChangeRow(user_id=user_id, key=key, old_value=old, new_value=new, source="user", created_at=utcnow())
    )


def preference_change_record(row: PreferenceChangeRow) -> PreferenceChange:
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
        aware(row.created_at),
    )


def vector_scan(
    loose: Sequence[tuple[int, int, bytes]],
    blocks: Sequence[tuple[int, bytes, bytes]],
    *,
    conversation_id: int,
    before_turn: int,
    limit: int,
    from_turn: int = 1,
) -> VectorScan:
    """Loose rows and sealed blocks as one scan: this conversation's turns first (newest first), then others."""
    import numpy as np  # loaded on first use: only retrieval memory needs it

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
    own = (all_turns < before_turn) & (all_turns >= from_turn)
    kept = np.nonzero((all_ids != conversation_id) | own)[0]
    # This conversation first, newest turn first; then the others, newest conversation and turn first.
    order = kept[np.lexsort((-all_turns[kept], -all_ids[kept], all_ids[kept] != conversation_id))]
    pairs = all_ids[order] * (1 << 32) + all_turns[order]
    _, first = np.unique(pairs, return_index=True)  # a turn read twice (sealed while being read) counts once
    order = order[np.sort(first)][:limit]
    return VectorScan(all_ids[order], all_turns[order], matrix[order])


def draft_fields(call: CallDraft) -> dict:
    return {name: getattr(call, name) for name in CallDraft.__dataclass_fields__}


def call_values(user_id: str, call: CallDraft, now: datetime) -> dict[str, Any]:
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


def call_row(user_id: str, call: CallDraft, now: datetime) -> ModelCallRow:
    return ModelCallRow(**call_values(user_id, call, now))


def add_call(session: Session, user_id: str, call: CallDraft | None, now: datetime) -> ModelCallRow | None:
    """Insert a ledger row in the caller's transaction (its id is needed by the rows that point at it)."""
    if call is None:
        return None
    row = call_row(user_id, call, now)
    session.add(row)
    session.flush()
    return row


def check_page(limit: int, offset: int = 0) -> None:
    """Page sizes are bounded so no read can ask for a whole table."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"A page holds 1 to {MAX_PAGE} rows.")
    if offset < 0:
        raise InvalidInput("A page offset cannot be negative.")
