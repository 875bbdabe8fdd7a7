"""Entity notes for entity memory: versions, newest first."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from .. import validation
from ..records import (
    CallDraft,
    Entity,
    ModelCall,
)
from ..schema import (
    ConversationRow,
    EntityRow,
    utcnow,
)
from .base import SqlBase
from .rows import (
    MAX_ENTITIES,
    add_call,
    aware,
    call_record,
)


class EntitySql(SqlBase):
    """Entity note versions per conversation."""

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
            call_row = add_call(session, user_id, call, now)
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
            saved = call_record(call_row) if call_row is not None else None
        keys = {name.casefold() for name, _ in cleaned}
        return [e for e in self.list_entities(user_id, conversation_id) if e.name.casefold() in keys], saved

    def list_entities(self, user_id: str, conversation_id: int, *, limit: int = MAX_ENTITIES) -> list[Entity]:
        """Current entities of a conversation (newest version of each), most recently updated first."""
        memory_start = (
            select(ConversationRow.memory_from_turn).where(ConversationRow.id == conversation_id).scalar_subquery()
        )
        newest = (
            select(func.max(EntityRow.id).label("id"), func.count().label("versions"))
            .where(
                EntityRow.conversation_id == conversation_id,
                EntityRow.user_id == user_id,
                EntityRow.turn >= memory_start,  # notes written before a clear are not used
            )
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
                Entity(row.name, row.summary, row.turn, versions, aware(row.created_at))
                for row, versions in session.execute(query)
            ]
