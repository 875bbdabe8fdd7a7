"""Preferences (custom memory): key/value facts per user, and the history of every change."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import validation
from ..errors import InvalidInput, NotFound
from ..records import (
    Preference,
    PreferenceChange,
)
from ..schema import (
    PreferenceChangeRow,
    PreferenceRow,
    utcnow,
)
from .base import SqlBase
from .rows import (
    MAX_PAGE,
    check_page,
    log_user_change,
    preference_change_record,
    preference_record,
)


class PreferenceSql(SqlBase):
    """Per-user preferences and their change history, with undo."""

    # -- preferences ----------------------------------------------------------------------------

    def list_preferences(self, user_id: str) -> list[Preference]:
        query = (
            select(PreferenceRow).where(PreferenceRow.user_id == user_id).order_by(PreferenceRow.key).limit(MAX_PAGE)
        )
        with self._tx(write=False) as session:
            return [preference_record(row) for row in session.scalars(query)]

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
                log_user_change(session, user_id, key, None, value)
            elif row.value != value or bool(row.enabled) != enabled:
                if row.value != value:
                    log_user_change(session, user_id, key, row.value, value)
                row.value, row.enabled, row.updated_at = value, enabled, utcnow()
            session.flush()
            return preference_record(row)

    def delete_preference(self, user_id: str, key: str) -> None:
        with self._tx(write=True) as session:
            row = session.scalars(
                select(PreferenceRow)
                .where(PreferenceRow.user_id == user_id, PreferenceRow.key == key)
                .with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"No preference named {key!r}.")
            log_user_change(session, user_id, key, row.value, None)
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
                    log_user_change(session, user_id, key, row.value, None)
                    session.delete(row)
            for key, (value, enabled) in cleaned.items():
                found = existing.get(key)
                if found is None:
                    session.add(PreferenceRow(user_id=user_id, key=key, value=value, enabled=enabled, updated_at=now))
                    log_user_change(session, user_id, key, None, value)
                elif found.value != value or bool(found.enabled) != enabled:
                    if found.value != value:
                        log_user_change(session, user_id, key, found.value, value)
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
            return [preference_change_record(c) for c in changes]

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
            return preference_change_record(undo)

    def preference_history(self, user_id: str, *, key: str | None = None, limit: int = 50) -> list[PreferenceChange]:
        """Changes to the user's preferences, newest first (one key's, or all)."""
        check_page(limit)
        query = select(PreferenceChangeRow).where(PreferenceChangeRow.user_id == user_id)
        if key is not None:
            query = query.where(PreferenceChangeRow.key == key)
        query = query.order_by(PreferenceChangeRow.id.desc()).limit(limit)
        with self._tx(write=False) as session:
            return [preference_change_record(row) for row in session.scalars(query)]

    def _check_preference_room(self, session: Session, user_id: str, *, adding: int) -> None:
        count = session.scalar(select(func.count()).select_from(PreferenceRow).where(PreferenceRow.user_id == user_id))
        if (count or 0) + adding > MAX_PAGE:
            raise InvalidInput(f"A user can keep at most {MAX_PAGE} preferences.")
