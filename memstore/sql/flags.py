"""Per-user flags: what the app remembers a user has seen or dismissed (never sent to a model)."""

from __future__ import annotations

import re

from .. import validation
from ..errors import InvalidInput
from ..schema import UserFlagRow, utcnow
from .base import SqlBase

FLAG_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


class FlagSql(SqlBase):
    def has_flag(self, user_id: str, name: str) -> bool:
        with self._tx(write=False) as session:
            return session.get(UserFlagRow, (user_id, _name(name))) is not None

    def set_flag(self, user_id: str, name: str) -> None:
        """Set once; setting it again changes nothing."""
        validation.user_id(user_id)
        with self._tx(write=True) as session:
            if session.get(UserFlagRow, (user_id, _name(name))) is None:
                session.add(UserFlagRow(user_id=user_id, name=name, set_at=utcnow()))


def _name(name: str) -> str:
    if not FLAG_NAME.fullmatch(name):
        raise InvalidInput("A flag name is lower-case letters, digits and underscores.")
    return name
