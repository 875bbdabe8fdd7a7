"""Frozen records that cross the storage boundary; the UI never sees ORM objects."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import numpy as np

Role = Literal["system", "user", "assistant"]
MessageStatus = Literal["complete", "partial", "failed", "forgotten"]  # forgotten: text removed, row kept
CallPurpose = Literal["chat", "summary", "facts", "entities"]
RECALL_SCOPES = ("conversation", "all")


@dataclass(frozen=True)
class MemorySettings:
    """How a conversation remembers: the type and its sizes, in named units."""

    memory_type: str = "window"
    window_turns: int = 3
    max_tokens: int = 1_000
    system_prompt: str = "You are a helpful assistant."
    recall_turns: int = 3  # retrieval: how many old turns to recall (top k)
    recall_min_score: float = 0.1  # retrieval: similarity a turn needs (wordllama runs low: 0.1-0.3 is related)
    recall_scope: str = "conversation"  # retrieval: "conversation" or "all" of the user's conversations


@dataclass(frozen=True)
class Conversation:
    """A conversation's header with running counters (no messages)."""

    id: int
    user_id: str
    title: str
    settings: MemorySettings
    created_at: datetime
    updated_at: datetime
    message_count: int = 0
    token_total: int = 0
    last_turn: int = 0
    temporary: bool = False
    memory_from_turn: int = 1  # memory (window, summaries, entities, recall) reads turns from here on

    @property
    def memory_cleared(self) -> bool:
        return self.memory_from_turn > 1


@dataclass(frozen=True)
class Message:
    """One stored message; `turn` groups a user message with its reply attempts."""

    id: int
    conversation_id: int
    seq: int
    turn: int
    role: Role
    content: str
    status: MessageStatus
    tokens: int
    tokenizer: str
    created_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class Summary:
    """One version of a running summary; new versions are added, old ones kept."""

    id: int
    conversation_id: int
    memory_type: str
    text: str
    from_turn: int
    through_turn: int
    tokens: int
    created_at: datetime
    call_id: int | None = None


@dataclass(frozen=True)
class Preference:
    """A stored fact about the user, injected into the system prompt while enabled."""

    key: str
    value: str
    enabled: bool
    updated_at: datetime


@dataclass(frozen=True)
class ChatMessage:
    """A message exactly as sent to the model."""

    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class Usage:
    """Token usage as the server reported it (None where it reported nothing)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True)
class CallDraft:
    """What the ledger records about one model call, before it has an id."""

    purpose: CallPurpose
    conversation_id: int | None
    turn: int | None
    memory_type: str
    model: str
    provider: str
    host: str
    params: dict[str, Any]
    request: tuple[ChatMessage, ...]
    reply: str = ""
    finish_reason: str | None = None
    usage: Usage = Usage()
    counted_prompt_tokens: int | None = None
    sections: dict[str, int] = field(default_factory=dict)
    history_from_turn: int | None = None
    history_to_turn: int | None = None
    latency_ms: float | None = None
    first_token_ms: float | None = None
    error_kind: str | None = None
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)  # what memory did and why: recalled turns, facts left out


CACHED_PURPOSES = frozenset({"summary", "facts", "entities"})  # calls a replay may reuse; chat calls are never reused


def request_hash(model: str, request: tuple[ChatMessage, ...], params: dict[str, Any]) -> str:
    """A stable fingerprint of an exact request: same model, messages and parameters, same hash."""
    body = json.dumps(
        {"model": model, "messages": [m.as_dict() for m in request], "params": params},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ModelCall(CallDraft):
    """A ledger row: one model call, chat or summary, exactly as made."""

    id: int = 0
    user_id: str = ""
    created_at: datetime | None = None


@dataclass(frozen=True, eq=False)
class VectorScan:
    """Stored turn vectors read for one recall, newest first: parallel arrays (int8 rows, see embeddings.to_bytes)."""

    conversation_ids: np.ndarray
    turns: np.ndarray
    vectors: np.ndarray

    def __len__(self) -> int:
        return len(self.turns)

    @classmethod
    def empty(cls) -> VectorScan:
        import numpy as np  # loaded on first use: only retrieval memory needs it

        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.int8))


@dataclass(frozen=True)
class PreferenceChange:
    """One change to a preference: what it was, what it became, who changed it and from which turn."""

    id: int
    key: str
    old_value: str | None  # None: the key did not exist
    new_value: str | None  # None: the key was removed
    source: str  # "auto" (extracted from a turn), "undo", "user"
    conversation_id: int | None
    turn: int | None
    call_id: int | None
    undoes: int | None
    created_at: datetime

    @property
    def kind(self) -> str:
        if self.source == "undo":
            return "undone"
        if self.old_value is None:
            return "added"
        return "removed" if self.new_value is None else "changed"


@dataclass(frozen=True)
class Entity:
    """A person, place or thing named in a conversation, with its current running summary."""

    name: str
    summary: str
    turn: int  # the turn whose extraction wrote this version
    versions: int
    updated_at: datetime


@dataclass(frozen=True)
class ForgetPlan:
    """What forgetting one message would change, counted before anything is touched."""

    message_id: int
    turn: int
    role: str
    model_calls: int  # ledger rows whose request or reply holds the text (it is replaced by a marker)
    summaries: int  # summary versions built from that turn or later (removed; rebuilt on the next turn)
    entity_notes: int  # entity note versions from that turn or later (removed)
    vectors: int  # the turn's stored vector for retrieval (removed)
    facts: tuple[PreferenceChange, ...]  # automatic facts saved from that turn (each removed only if chosen)
    quoted_in: int = 0  # other messages of the conversation that quote it word for word (the quote is replaced)
    in_title: bool = False  # the conversation's title was made from it (it is made again from what is left)
    forgotten_text: str = field(default="", repr=False)  # forget_message's result: for copies outside the store

    def sentence(self) -> str:
        """'This message appears in 14 model calls, 1 summary, 2 entity notes and 1 saved fact.'"""
        counted = [
            (self.quoted_in, "other message quoting it", "other messages quoting it"),
            (self.summaries, "summary", "summaries"),
            (self.entity_notes, "entity note", None),
            (self.vectors, "stored vector", None),
            (len(self.facts), "saved fact", None),
        ]
        parts = [_count(self.model_calls, "model call")] + [_count(n, a, b) for n, a, b in counted if n]
        if self.in_title:
            parts.append("the conversation's title")
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"This message appears in {listed}."


@dataclass(frozen=True)
class UserData:
    """How many rows one user owns in each table: what 'forget everything about me' deletes."""

    conversations: int
    messages: int
    model_calls: int
    summaries: int
    preferences: int
    preference_changes: int
    vectors: int
    entity_notes: int

    @property
    def total(self) -> int:
        return sum(getattr(self, name) for name in self.__dataclass_fields__)

    def sentence(self) -> str:
        return (
            f"{_count(self.conversations, 'conversation')} ({_count(self.messages, 'message')}), "
            f"{_count(self.model_calls, 'model call')}, {_count(self.summaries, 'summary', 'summaries')}, "
            f"{_count(self.preferences, 'preference')} with {_count(self.preference_changes, 'recorded change')}, "
            f"{_count(self.vectors, 'stored vector')} and {_count(self.entity_notes, 'entity note')}"
        )


@dataclass(frozen=True)
class Expired:
    """One user's rows past the retention age: idle conversations (with all they hold) and old ledger rows."""

    user_id: str
    conversations: int
    model_calls: int

    def sentence(self) -> str:
        return (
            f"{_count(self.conversations, 'conversation')} idle for longer and "
            f"{_count(self.model_calls, 'older model call')}"
        )


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"
