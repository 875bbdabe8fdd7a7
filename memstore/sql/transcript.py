"""Conversations, their append-only messages and summary versions."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from .. import validation
from ..errors import InvalidInput, StorageError
from ..records import (
    CallDraft,
    ChatMessage,
    Conversation,
    MemorySettings,
    Message,
    MessageStatus,
    ModelCall,
    Summary,
)
from ..schema import (
    ConversationRow,
    MessageRow,
    SummaryRow,
    utcnow,
)
from ..store_api import ImportedConversation, NewMessage
from ..titles import DEFAULT_TITLE, title_from_message
from .base import SqlBase
from .forgetting import redact_new_turn
from .rows import (
    STATUSES,
    add_call,
    aware,
    call_record,
    call_values,
    check_page,
    conversation_record,
    draft_fields,
    hot_row,
    message_record,
    summary_record,
)

IMPORT_BATCH_ROWS = 5_000  # messages per INSERT when importing: bounded memory at any size
MAX_SOURCE_CHARS = 500


class TranscriptSql(SqlBase):
    """Conversations, messages and summaries; every method sees only the calling user's rows."""

    # -- conversations --------------------------------------------------------------------

    def create_conversation(self, user_id: str, title: str, settings: MemorySettings) -> Conversation:
        validation.user_id(user_id)
        with self._tx(write=True) as session:
            row = self._new_conversation(session, user_id, title, settings, source=None, created_at=None)
            return conversation_record(row, self.temporary)

    def _new_conversation(
        self,
        session: Session,
        user_id: str,
        title: str,
        settings: MemorySettings,
        *,
        source: str | None,
        created_at: datetime | None,
    ) -> ConversationRow:
        title = validation.title(title, self.limits)
        settings = self._settings(settings)
        if source is not None and not 0 < len(source) <= MAX_SOURCE_CHARS:
            raise InvalidInput(f"A conversation's source must be 1 to {MAX_SOURCE_CHARS} characters.")
        now = utcnow()
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
            created_at=created_at or now,
            updated_at=now,
            last_seq=0,
            last_turn=0,
            message_count=0,
            token_total=0,
            source=source,
        )
        session.add(row)
        session.flush()
        return row

    def find_conversation(self, user_id: str, *, source: str) -> Conversation | None:
        """The conversation imported from (or made for) this source, if there is one."""
        with self._tx(write=False) as session:
            row = session.scalars(
                select(ConversationRow).where(ConversationRow.user_id == user_id, ConversationRow.source == source)
            ).one_or_none()
            return None if row is None else conversation_record(row, self.temporary)

    def conversation_for_source(
        self, user_id: str, source: str, *, title: str, settings: MemorySettings
    ) -> Conversation:
        """The conversation for this source, created the first time; two processes asking at once get the same one."""
        validation.user_id(user_id)
        found = self.find_conversation(user_id, source=source)
        if found is not None:
            return found
        try:
            with self._tx(write=True) as session:
                return conversation_record(
                    self._new_conversation(session, user_id, title, settings, source=source, created_at=None),
                    self.temporary,
                )
        except StorageError:
            found = self.find_conversation(user_id, source=source)  # the other process created it first
            if found is None:
                raise
            return found

    def find_sources(self, user_id: str, sources: Sequence[str]) -> dict[str, int]:
        """Which of these sources were imported (or made) already, and as which conversation."""
        found: dict[str, int] = {}
        with self._tx(write=False) as session:
            for start in range(0, len(sources), 500):
                chunk = list(sources[start : start + 500])
                rows = session.execute(
                    select(ConversationRow.source, ConversationRow.id).where(
                        ConversationRow.user_id == user_id, ConversationRow.source.in_(chunk)
                    )
                )
                found.update((str(source), int(cid)) for source, cid in rows)
        return found

    def import_conversations(
        self, user_id: str, conversations: Iterable[ImportedConversation], *, skip_existing: bool = False
    ) -> list[Conversation]:
        """Create conversations with their messages in one transaction: all of them, or (on any error) none.

        The messages are streamed into the database in batches, so an import of any size holds a batch in memory.
        A source imported before is refused, or with `skip_existing` left out of the result.
        """
        validation.user_id(user_id)
        created: list[Conversation] = []
        with self._tx(write=True) as session:
            for item in conversations:
                if item.source is not None:
                    taken = session.scalars(
                        select(ConversationRow.id).where(
                            ConversationRow.user_id == user_id, ConversationRow.source == item.source
                        )
                    ).first()
                    if taken is not None and skip_existing:
                        continue
                    if taken is not None:
                        raise InvalidInput(
                            f"“{item.title[:80]}” was imported before (conversation #{taken}); nothing was imported."
                        )
                conv = self._new_conversation(
                    session, user_id, item.title, item.settings, source=item.source, created_at=item.created_at
                )
                batch: list[dict] = []
                for row in self._message_rows(conv, item.messages):
                    batch.append(row)
                    if len(batch) >= IMPORT_BATCH_ROWS:
                        session.execute(insert(MessageRow), batch)
                        batch = []
                if batch:
                    session.execute(insert(MessageRow), batch)
                session.flush()
                created.append(conversation_record(conv, self.temporary))
                session.expunge(conv)  # its counters are written: the session holds no row per conversation
            return created

    def _message_rows(self, conv: ConversationRow, messages: Iterable[NewMessage]) -> Iterator[dict]:
        """Rows for imported messages, counted on `conv`; a user message starts each new turn."""
        now = utcnow()
        for m in messages:
            if m.role not in ("user", "assistant"):
                raise InvalidInput(f"Cannot import a message with role {m.role!r}.")
            if m.status not in STATUSES:
                raise InvalidInput(f"Cannot import a message with status {m.status!r}.")
            if m.role == "user":
                validation.message_text(m.content, self.limits)
            elif "\x00" in m.content:
                raise InvalidInput("An imported message contains a NUL byte.")
            if m.role == "user" or conv.last_turn == 0:
                conv.last_turn += 1
            conv.last_seq += 1
            conv.message_count += 1
            conv.token_total += m.tokens
            yield dict(
                conversation_id=conv.id,
                user_id=conv.user_id,
                seq=conv.last_seq,
                turn=conv.last_turn,
                role=m.role,
                content=m.content,
                status=m.status,
                error=None,
                tokens=m.tokens,
                tokenizer=m.tokenizer,
                created_at=m.created_at or now,
            )
        conv.updated_at = now

    def get_conversation(self, user_id: str, conversation_id: int) -> Conversation:
        with self._hot.transaction(write=False) as cursor:
            row = self._hot.conversation(cursor, user_id, conversation_id)
        return conversation_record(hot_row(row), self.temporary)

    def list_conversations(
        self, user_id: str, *, search: str | None = None, limit: int = 50, offset: int = 0
    ) -> list[Conversation]:
        check_page(limit, offset)
        query = select(ConversationRow).where(ConversationRow.user_id == user_id)
        if search and search.strip():
            query = query.where(func.lower(ConversationRow.title).contains(search.strip().lower(), autoescape=True))
        query = query.order_by(ConversationRow.updated_at.desc(), ConversationRow.id.desc()).limit(limit).offset(offset)
        with self._tx(write=False) as session:
            return [conversation_record(row, self.temporary) for row in session.scalars(query)]

    def rename_conversation(self, user_id: str, conversation_id: int, title: str) -> Conversation:
        title = validation.title(title, self.limits)
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            row.title = title
            row.updated_at = utcnow()
            session.flush()
            return conversation_record(row, self.temporary)

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
            return conversation_record(row, self.temporary)

    def claim_retry(self, user_id: str, conversation_id: int, turn: int, *, hold_s: float) -> bool:
        """Claim a turn for one retry; False when another retry of it is still running (or holds its claim)."""
        now = utcnow()
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            until = aware(row.retry_until) if row.retry_until is not None else None
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

    def clear_memory(self, user_id: str, conversation_id: int) -> Conversation:
        """Start the memory over from the next turn (window, summaries, entity notes, recall); the transcript stays.

        Nothing is deleted: earlier turns, summaries and notes are only no longer read, so it can be
        undone until the next turn runs.
        """
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            if row.memory_from_turn == row.last_turn + 1:
                raise InvalidInput("This conversation's memory is already empty: nothing has happened since.")
            row.memory_undo_from, row.memory_from_turn = row.memory_from_turn, row.last_turn + 1
            session.flush()
            return conversation_record(row, self.temporary)

    def undo_clear_memory(self, user_id: str, conversation_id: int) -> Conversation:
        """Bring back the memory cleared last, if no turn has run since."""
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            if row.memory_undo_from is None or row.last_turn >= row.memory_from_turn:
                raise InvalidInput("The memory can no longer be brought back: a turn has run since it was cleared.")
            row.memory_from_turn, row.memory_undo_from = row.memory_undo_from, None
            session.flush()
            return conversation_record(row, self.temporary)

    def delete_conversation(self, user_id: str, conversation_id: int) -> None:
        with self._tx(write=True) as session:
            row = self._owned(session, user_id, conversation_id, lock=True)
            session.delete(row)

    # -- messages ---------------------------------------------------------------------------

    def add_user_message(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> Message:
        return self._save_user_message(user_id, conversation_id, content, tokens, tokenizer)[0]

    def begin_turn(
        self, user_id: str, conversation_id: int, content: str, *, tokens: int, tokenizer: str
    ) -> tuple[Message, Conversation]:
        """Save the user's message as a new turn and return it with the conversation as it now stands; a "New chat"
        with no other message takes its title from this one."""
        message, conversation = self._save_user_message(
            user_id, conversation_id, content, tokens, tokenizer, with_conversation=True
        )
        assert conversation is not None  # with_conversation reads it back
        return message, conversation

    def _save_user_message(
        self,
        user_id: str,
        conversation_id: int,
        content: str,
        tokens: int,
        tokenizer: str,
        *,
        with_conversation: bool = False,
    ) -> tuple[Message, Conversation | None]:
        content = validation.message_text(content, self.limits)
        with self._hot.transaction(write=True) as cursor:
            message, conversation = self._append(
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
                with_conversation=with_conversation,
            )
            if conversation is not None and conversation.message_count == 1 and conversation.title == DEFAULT_TITLE:
                # titled in the same transaction, so a forget of this message can never miss the title made from it
                title = title_from_message(content)[: self.limits.max_title_chars] or DEFAULT_TITLE
                cursor.execute(
                    self._hot.sql("UPDATE conversations SET title = ? WHERE id = ?"), (title, conversation_id)
                )
                conversation = replace(conversation, title=title)
            return message, conversation

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
    ) -> tuple[Message, ModelCall | None]:
        """Save a turn's reply and its ledger row together. `carried` is the stored messages the request was built
        from (id to text): any of them forgotten since is redacted from both in the same transaction."""
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
            call_id = self._hot.insert(cursor, "model_calls", call_values(user_id, call, now)) if call else None
            redacted = bool(carried) and redact_new_turn(
                self._hot, cursor, user_id, carried or {}, call_id=call_id, message_id=message.id
            )
            if redacted:
                message, call = self._redacted(cursor, message, call, call_id)
        if redacted:  # a very large request may have spilled into the log before it was redacted: erase the log
            self._hot.try_pending_checkpoint()
        if call is None or call_id is None:
            return message, None
        return message, ModelCall(**draft_fields(call), id=call_id, user_id=user_id, created_at=aware(now))

    def _redacted(
        self, cursor: Any, message: Message, call: CallDraft | None, call_id: int | None
    ) -> tuple[Message, CallDraft | None]:
        """The reply and its ledger row as stored after redaction (what the page then shows)."""
        hot = self._hot
        cursor.execute(hot.sql("SELECT content FROM messages WHERE id = ?"), (message.id,))
        message = replace(message, content=cursor.fetchone()[0])
        if call is None or call_id is None:
            return message, call
        cursor.execute(hot.sql("SELECT request, reply FROM model_calls WHERE id = ?"), (call_id,))
        request, reply = cursor.fetchone()
        request = json.loads(request) if isinstance(request, str) else request
        messages = tuple(ChatMessage(m["role"], m["content"]) for m in request)
        return message, replace(call, request=messages, reply=reply)

    def import_messages(self, user_id: str, conversation_id: int, messages: Sequence[NewMessage]) -> int:
        """Append many messages in one transaction; a user message starts each new turn."""
        with self._tx(write=True) as session:
            conv = self._owned(session, user_id, conversation_id, lock=True)
            rows = list(self._message_rows(conv, messages))
            if rows:
                session.execute(insert(MessageRow), rows)
            return len(rows)

    def find_messages(
        self,
        user_id: str,
        *,
        containing: str | None = None,
        role: str | None = None,
        status: str | None = None,
        limit: int = 5,
    ) -> list[Message]:
        """The user's newest saved messages that hold a text (any case), have a role or a status: a scan, for checks
        a person asks for (a lesson's), never on a turn's path."""
        query = select(MessageRow).where(MessageRow.user_id == user_id)
        if containing:
            query = query.where(func.lower(MessageRow.content).contains(containing.lower(), autoescape=True))
        if role:
            query = query.where(MessageRow.role == role)
        if status:
            query = query.where(MessageRow.status == status)
        check_page(limit)
        with self._tx(write=False) as session:
            rows = session.scalars(query.order_by(MessageRow.id.desc()).limit(limit)).all()
            return [message_record(r) for r in rows]

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
        return summary_record(hot_row(row)) if row is not None else None

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
            call_row = add_call(session, user_id, call, now)
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
            return summary_record(row), (call_record(call_row) if call_row is not None else None)
