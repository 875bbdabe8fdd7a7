"""The model-call ledger: every request exactly as sent, its reply, tokens and timing."""

from __future__ import annotations

from sqlalchemy import select

from .. import validation
from ..records import (
    CallDraft,
    ModelCall,
)
from ..schema import (
    ModelCallRow,
    utcnow,
)
from .base import SqlBase
from .rows import (
    MAX_PAGE,
    call_record,
    call_row,
    check_page,
)


class LedgerSql(SqlBase):
    """Ledger rows: recorded with the turn that made them, read back by conversation, turn or request."""

    # -- ledger ---------------------------------------------------------------------------------

    def record_call(self, user_id: str, call: CallDraft) -> ModelCall:
        validation.user_id(user_id)
        now = utcnow()
        with self._tx(write=True) as session:
            if call.conversation_id is not None:
                self._owned(session, user_id, call.conversation_id)
            row = call_row(user_id, call, now)
            session.add(row)
            session.flush()
            return call_record(row)

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
            return [call_record(row) for row in session.scalars(query)]

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
            return [call_record(row) for row in session.scalars(query)]

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
            return call_record(row) if row is not None else None
