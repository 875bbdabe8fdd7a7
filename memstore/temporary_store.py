"""A store that lives only in the browser session: temporary chats write nothing to disk."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from . import validation
from .config import Limits
from .embeddings import VECTOR_DTYPE
from .errors import InvalidInput, NotFound
from .memory import MEMORY_TYPES
from .records import (
    CACHED_PURPOSES,
    CallDraft,
    Conversation,
    Entity,
    MemorySettings,
    Message,
    MessageStatus,
    ModelCall,
    Summary,
    VectorScan,
)
from .records import request_hash as record_request_hash
from .schema import utcnow
from .sql_store import MAX_ENTITIES, MAX_VECTOR_SCAN, STATUSES, check_page
from .store_api import NewMessage


class TemporaryStore:
    """The transcript contract held in memory; gone when the session that owns it ends."""

    temporary = True

    def __init__(self, *, limits: Limits = Limits(), known_memory_types: frozenset[str] | None = None):
        self.limits = limits
        self._known_types = known_memory_types
        self._lock = threading.Lock()
        self._conversations: dict[int, Conversation] = {}
        self._messages: dict[int, list[Message]] = {}
        self._summaries: dict[int, list[Summary]] = {}
        self._calls: list[ModelCall] = []
        self._vectors: dict[tuple[int, str], dict[int, bytes]] = {}  # (conversation, embedder) -> turn -> vector
        self._entities: dict[int, list[tuple[str, str, int, datetime]]] = {}  # conversation -> versions
        self._next_id = {"conversation": 0, "message": 0, "summary": 0, "call": 0}
        self._retries: dict[int, tuple[int, float]] = {}  # conversation -> (turn, claim ends, monotonic s)

    def _new_id(self, kind: str) -> int:
        self._next_id[kind] += 1
        return self._next_id[kind]

    def _owned(self, user_id: str, conversation_id: int) -> Conversation:
        conv = self._conversations.get(conversation_id)
        if conv is None or conv.user_id != user_id:
            raise NotFound(f"Conversation {conversation_id} was not found.")
        return conv

    def _settings(self, settings: MemorySettings) -> MemorySettings:
        known = self._known_types if self._known_types is not None else frozenset(MEMORY_TYPES)
        return validation.memory_settings(settings, known, self.limits)

    # -- conversations --------------------------------------------------------------------

    def create_conversation(self, user_id: str, title: str, settings: MemorySettings) -> Conversation:
        validation.user_id(user_id)
        title = validation.title(title, self.limits)
        settings = self._settings(settings)
        with self._lock:
            now = utcnow()
            conv = Conversation(
                id=self._new_id("conversation"),
                user_id=user_id,
                title=title,
                settings=settings,
                created_at=now,
                updated_at=now,
                temporary=True,
            )
            self._conversations[conv.id] = conv
            self._messages[conv.id] = []
            self._summaries[conv.id] = []
            return conv

    def get_conversation(self, user_id: str, conversation_id: int) -> Conversation:
        with self._lock:
            return self._owned(user_id, conversation_id)

    def list_conversations(
        self, user_id: str, *, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        check_page(limit, offset)
        with self._lock:
            rows = [c for c in self._conversations.values() if c.user_id == user_id]
        if search and search.strip():
            needle = search.strip().lower()
            rows = [c for c in rows if needle in c.title.lower()]
        rows.sort(key=lambda c: (c.updated_at, c.id), reverse=True)
        return rows[offset : offset + limit]

    def rename_conversation(self, user_id: str, conversation_id: int, title: str) -> Conversation:
        title = validation.title(title, self.limits)
        with self._lock:
            conv = replace(self._owned(user_id, conversation_id), title=title, updated_at=utcnow())
            self._conversations[conversation_id] = conv
            return conv

    def update_settings(self, user_id: str, conversation_id: int, settings: MemorySettings) -> Conversation:
        settings = self._settings(settings)
        with self._lock:
            conv = replace(self._owned(user_id, conversation_id), settings=settings)
            self._conversations[conversation_id] = conv
            return conv

    def claim_retry(self, user_id: str, conversation_id: int, turn: int, *, hold_s: float) -> bool:
        """Claim a turn for one retry; False when another retry of it is still running."""
        with self._lock:
            self._owned(user_id, conversation_id)
            claimed = self._retries.get(conversation_id)
            if claimed is not None and claimed[0] == turn and claimed[1] > time.monotonic():
                return False
            self._retries[conversation_id] = (turn, time.monotonic() + hold_s)
            return True

    def release_retry(self, user_id: str, conversation_id: int, turn: int) -> None:
        with self._lock:
            conv = self._conversations.get(conversation_id)
            if conv is not None and conv.user_id == user_id and self._retries.get(conversation_id, (None,))[0] == turn:
                del self._retries[conversation_id]

    def delete_conversation(self, user_id: str, conversation_id: int) -> None:
        with self._lock:
            self._owned(user_id, conversation_id)
            del self._conversations[conversation_id]
            del self._messages[conversation_id]
            del self._summaries[conversation_id]
            self._calls = [c for c in self._calls if c.conversation_id != conversation_id]
            self._entities.pop(conversation_id, None)
            self._vectors = {key: turns for key, turns in self._vectors.items() if key[0] != conversation_id}

    # -- messages ---------------------------------------------------------------------------

    def _append(
        self,
        conv: Conversation,
        *,
        turn: int,
        role: str,
        content: str,
        status: str,
        tokens: int,
        tokenizer: str,
        error: str | None,
    ) -> Message:
        now = utcnow()
        seq = (self._messages[conv.id][-1].seq if self._messages[conv.id] else 0) + 1
        message = Message(
            id=self._new_id("message"),
            conversation_id=conv.id,
            seq=seq,
            turn=turn,
            role=role,  # type: ignore[arg-type]
            content=content,
            status=status,  # type: ignore[arg-type]
            tokens=tokens,
            tokenizer=tokenizer,
            created_at=now,
            error=error,
        )
        self._messages[conv.id].append(message)
        self._conversations[conv.id] = replace(
            conv,
            last_turn=max(conv.last_turn, turn),
            message_count=conv.message_count + 1,
            token_total=conv.token_total + tokens,
            updated_at=now,
        )
        return message

    def add_user_message(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> Message:
        return self.begin_turn(user_id, conversation_id, content, tokens=tokens, tokenizer=tokenizer)[0]

    def begin_turn(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> tuple[Message, Conversation]:
        """Save the user's message as a new turn and return it with the conversation as it now stands."""
        content = validation.message_text(content, self.limits)
        with self._lock:
            conv = self._owned(user_id, conversation_id)
            message = self._append(
                conv,
                turn=conv.last_turn + 1,
                role="user",
                content=content,
                status="complete",
                tokens=tokens,
                tokenizer=tokenizer,
                error=None,
            )
            return message, self._conversations[conv.id]

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
        content = content.replace("\x00", "\ufffd")
        with self._lock:
            conv = self._owned(user_id, conversation_id)
            if not 1 <= turn <= conv.last_turn:
                raise InvalidInput(f"Turn {turn} does not exist in this conversation.")
            message = self._append(
                conv,
                turn=turn,
                role="assistant",
                content=content,
                status=status,
                tokens=tokens,
                tokenizer=tokenizer,
                error=error,
            )
            return message, (self._store_call(user_id, call) if call is not None else None)

    def import_messages(self, user_id: str, conversation_id: int, messages: Sequence[NewMessage]) -> int:
        for m in messages:
            if m.role not in ("user", "assistant") or m.status not in STATUSES:
                raise InvalidInput(f"Cannot import a message with role {m.role!r} and status {m.status!r}.")
            if m.role == "user":
                validation.message_text(m.content, self.limits)
        with self._lock:
            self._owned(user_id, conversation_id)
            for m in messages:
                conv = self._owned(user_id, conversation_id)
                turn = conv.last_turn + 1 if (m.role == "user" or conv.last_turn == 0) else conv.last_turn
                self._append(
                    conv,
                    turn=turn,
                    role=m.role,
                    content=m.content,
                    status=m.status,
                    tokens=m.tokens,
                    tokenizer=m.tokenizer,
                    error=None,
                )
        return len(messages)

    def last_turns(self, user_id: str, conversation_id: int, turns: int, *, through_turn: int) -> list[Message]:
        if turns <= 0 or through_turn <= 0:
            self.get_conversation(user_id, conversation_id)
            return []
        return self.turns_between(user_id, conversation_id, max(1, through_turn - turns + 1), through_turn)

    def turns_between(self, user_id: str, conversation_id: int, from_turn: int, to_turn: int) -> list[Message]:
        with self._lock:
            self._owned(user_id, conversation_id)
            return [m for m in self._messages[conversation_id] if from_turn <= m.turn <= to_turn]

    def page(
        self, user_id: str, conversation_id: int, *, limit: int = 50, before_seq: int | None = None
    ) -> list[Message]:
        check_page(limit)
        with self._lock:
            self._owned(user_id, conversation_id)
            rows = self._messages[conversation_id]
            if before_seq is not None:
                rows = [m for m in rows if m.seq < before_seq]
            return list(rows[-limit:])

    # -- summaries ------------------------------------------------------------------------------

    def latest_summary(self, user_id: str, conversation_id: int, memory_type: str) -> Summary | None:
        with self._lock:
            self._owned(user_id, conversation_id)
            found = [s for s in self._summaries[conversation_id] if s.memory_type == memory_type]
            return found[-1] if found else None

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
        with self._lock:
            self._owned(user_id, conversation_id)
            stored = self._store_call(user_id, call) if call is not None else None
            summary = Summary(
                id=self._new_id("summary"),
                conversation_id=conversation_id,
                memory_type=memory_type,
                text=text,
                from_turn=from_turn,
                through_turn=through_turn,
                tokens=tokens,
                created_at=utcnow(),
                call_id=stored.id if stored else None,
            )
            self._summaries[conversation_id].append(summary)
            return summary, stored

    # -- turn vectors and entities --------------------------------------------------------------

    def add_turn_vectors(
        self, user_id: str, conversation_id: int, embedder: str, vectors: Sequence[tuple[int, bytes]]
    ) -> int:
        with self._lock:
            self._owned(user_id, conversation_id)
            stored = self._vectors.setdefault((conversation_id, embedder), {})
            new = [(turn, vector) for turn, vector in vectors if turn not in stored]
            stored.update(new)
            return len(new)

    def vector_watermark(self, user_id: str, conversation_id: int, embedder: str) -> int:
        with self._lock:
            self._owned(user_id, conversation_id)
            return max(self._vectors.get((conversation_id, embedder), {}), default=0)

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
        if not 1 <= limit <= MAX_VECTOR_SCAN:
            raise InvalidInput(f"A vector scan reads 1 to {MAX_VECTOR_SCAN:,} turns.")
        with self._lock:
            self._owned(user_id, conversation_id)
            found = [
                (conversation_id, turn, vector)
                for turn, vector in self._vectors.get((conversation_id, embedder), {}).items()
                if turn < before_turn
            ]
            if all_conversations:  # a temporary store holds only this session's conversations
                found += [
                    (c, turn, vector)
                    for (c, name), turns in self._vectors.items()
                    if name == embedder and c != conversation_id and self._conversations[c].user_id == user_id
                    for turn, vector in turns.items()
                ]
        found.sort(key=lambda v: (v[0] == conversation_id, v[1]), reverse=True)
        found = found[:limit]
        if not found:
            return VectorScan.empty()
        return VectorScan(
            np.array([c for c, _, _ in found], dtype=np.int64),
            np.array([t for _, t, _ in found], dtype=np.int64),
            np.frombuffer(b"".join(v for _, _, v in found), dtype=VECTOR_DTYPE).reshape(len(found), -1),
        )

    def add_entity_versions(
        self,
        user_id: str,
        conversation_id: int,
        updates: Sequence[tuple[str, str]],
        *,
        turn: int,
        call: CallDraft | None,
    ) -> tuple[list[Entity], ModelCall | None]:
        cleaned = [(validation.entity_name(name), validation.entity_summary(summary)) for name, summary in updates]
        with self._lock:
            self._owned(user_id, conversation_id)
            stored = self._store_call(user_id, call) if call is not None else None
            now = utcnow()
            self._entities.setdefault(conversation_id, []).extend((n, s, turn, now) for n, s in cleaned)
        keys = {name.casefold() for name, _ in cleaned}
        return [e for e in self.list_entities(user_id, conversation_id) if e.name.casefold() in keys], stored

    def list_entities(self, user_id: str, conversation_id: int, *, limit: int = MAX_ENTITIES) -> list[Entity]:
        with self._lock:
            self._owned(user_id, conversation_id)
            newest: dict[str, Entity] = {}
            for name, summary, turn, created_at in self._entities.get(conversation_id, []):
                key = name.casefold()
                versions = newest[key].versions + 1 if key in newest else 1
                newest.pop(key, None)  # re-insert: dict order becomes "most recently updated last"
                newest[key] = Entity(name, summary, turn, versions, created_at)
            return list(reversed(newest.values()))[:limit]

    # -- ledger ---------------------------------------------------------------------------------

    def _store_call(self, user_id: str, call: CallDraft) -> ModelCall:
        fields = {name: getattr(call, name) for name in CallDraft.__dataclass_fields__}
        stored = ModelCall(**fields, id=self._new_id("call"), user_id=user_id, created_at=utcnow())
        self._calls.append(stored)
        return stored

    def record_call(self, user_id: str, call: CallDraft) -> ModelCall:
        validation.user_id(user_id)
        with self._lock:
            if call.conversation_id is not None:
                self._owned(user_id, call.conversation_id)
            return self._store_call(user_id, call)

    def calls_for_turn(self, user_id: str, conversation_id: int, turn: int) -> list[ModelCall]:
        with self._lock:
            self._owned(user_id, conversation_id)
            return [c for c in self._calls if c.conversation_id == conversation_id and c.turn == turn]

    def find_call(self, user_id: str, request_hash: str) -> ModelCall | None:
        with self._lock:
            for call in reversed(self._calls):
                if (
                    call.user_id == user_id
                    and call.error is None
                    and call.purpose in CACHED_PURPOSES
                    and record_request_hash(call.model, call.request, call.params) == request_hash
                ):
                    return call
        return None

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
        with self._lock:
            rows = [
                c
                for c in self._calls
                if c.user_id == user_id
                and (conversation_id is None or c.conversation_id == conversation_id)
                and (purpose is None or c.purpose == purpose)
            ]
        rows.reverse()
        return rows[offset : offset + limit]
