"""Forgetting: one message everywhere the store holds it, or everything about one user, in one transaction.

Nothing else in the store deletes user text. Deleted SQLite pages are zeroed (secure_delete, set on
every connection) and the write-ahead log is checkpointed and truncated afterwards, so the text is
not left in the database file or its WAL (when a reader keeps the log in use, the store says so and
erases it later: HotPath.checkpoint). A title made from the message is made again from what is left,
and a turn saved after the forget, from a request built before it, is redacted as it is saved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..embeddings import VECTOR_DTYPE
from ..errors import InvalidInput, NotFound
from ..forgotten import FORGOTTEN_MARK, SUBSTRING_MIN_CHARS
from ..records import Expired, ForgetPlan, Message, PreferenceChange, UserData
from ..schema import utcnow
from ..titles import DEFAULT_TITLE, FORK_SUFFIX, title_from_message
from .base import SqlBase
from .hotpath import HotPath

ID_BATCH = 500  # ids per IN (...) list
USER_TABLES = (  # children first, so foreign keys never point at a deleted row
    "turn_vector_blocks",
    "turn_vectors",
    "entities",
    "summaries",
    "messages",
    "preference_changes",
    "preferences",
    "model_calls",
    "conversations",
    "user_flags",
)


def _made_from(title: str, content: str) -> bool:
    """Whether a title was made from this message: as a new chat names itself, or a fork of one (transfer.fork)."""
    made = title_from_message(content)
    return bool(made) and title != DEFAULT_TITLE and (title == made or title.startswith(made + FORK_SUFFIX))


def forgotten_note(when: datetime) -> str:
    return f"forgotten on {when:%Y-%m-%d}"


def _json_text(text: str) -> str:
    """The text as it appears inside a stored JSON request (SQLAlchemy stores JSON with json.dumps)."""
    return json.dumps(text)[1:-1]


def _find(hot: HotPath, column: str) -> str:
    """Where a parameter's text occurs in a column (0 when it does not)."""
    return f"{'instr' if hot.sqlite else 'strpos'}({column}, ?)"


def _replaced(hot: HotPath, column: str, pairs: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
    """A JSON column with each pair's text replaced by its mark, and the parameters."""
    value = column if hot.sqlite else f"CAST({column} AS TEXT)"
    params: list[Any] = []
    for found, mark in pairs:
        value = f"REPLACE({value}, ?, ?)"
        params += [found, mark]
    return (value if hot.sqlite else f"CAST({value} AS JSON)"), params


def ledger_sql(hot: HotPath, text: str, title: str | None = None) -> tuple[str, list[Any], str, list[Any]]:
    """For ledger rows that hold the text: a WHERE fragment and its parameters, and the SET that replaces it.

    In a request (JSON) the text is found as a whole message, and inside other text when it is long
    enough not to be part of another word; the same pairs find it and replace it. A `title` made from
    the text is found where a request quotes it (“title”, in recall from another conversation) and in
    the call's details.
    """
    whole = '"content": "'
    request_pairs = [(whole + _json_text(text) + '"', whole + FORGOTTEN_MARK + '"')]
    long_enough = len(text) >= SUBSTRING_MIN_CHARS
    if long_enough:
        request_pairs.append((_json_text(text), FORGOTTEN_MARK))
    details_pairs: list[tuple[str, str]] = []
    if title is not None:
        request_pairs.append((_json_text(f"“{title}”"), _json_text(f"“{FORGOTTEN_MARK}”")))
        key = '"conversation_title": "'
        details_pairs.append((key + _json_text(title) + '"', key + FORGOTTEN_MARK + '"'))
    request = "request" if hot.sqlite else "CAST(request AS TEXT)"
    details = "details" if hot.sqlite else "CAST(details AS TEXT)"
    where = [f"{_find(hot, request)} > 0" for _ in request_pairs]
    where.append(f"{_find(hot, 'reply')} > 0" if long_enough else "reply = ?")
    where += [f"{_find(hot, details)} > 0" for _ in details_pairs]
    where_params: list[Any] = [found for found, _ in request_pairs] + [text] + [found for found, _ in details_pairs]
    new_request, set_params = _replaced(hot, "request", request_pairs)
    new_reply = "REPLACE(reply, ?, ?)" if long_enough else "CASE WHEN reply = ? THEN ? ELSE reply END"
    set_params += [text, FORGOTTEN_MARK]
    assignments = f"request = {new_request}, reply = {new_reply}, request_hash = NULL"
    if details_pairs:
        new_details, details_params = _replaced(hot, "details", details_pairs)
        assignments += f", details = {new_details}"
        set_params += details_params
    return "(" + " OR ".join(where) + ")", where_params, assignments, set_params


def quote_sql(hot: HotPath) -> str:
    """Replace a long forgotten text where other messages quote it word for word (params: text, mark, text)."""
    return f"UPDATE messages SET content = REPLACE(content, ?, ?) WHERE {{where}} AND {_find(hot, 'content')} > 0"


def redact_new_turn(
    hot: HotPath, cursor: Any, user_id: str, carried: Mapping[int, str], *, call_id: int | None, message_id: int
) -> bool:
    """In the transaction that saves a reply: redact the text of any message the request carried that has been
    forgotten since the request was built, from the new ledger row and the reply. True when something was.

    The carried messages are read FOR SHARE on PostgreSQL (forget_message locks the message FOR UPDATE before
    it redacts the ledger), so either the forget sees this row or this save sees the forget.
    """
    ids = sorted(i for i, text in carried.items() if text)
    gone: list[str] = []
    lock = "" if hot.sqlite else " FOR SHARE"
    for start in range(0, len(ids), ID_BATCH):
        batch = ids[start : start + ID_BATCH]
        cursor.execute(
            hot.sql(f"SELECT id, status FROM messages WHERE user_id = ? AND id IN ({', '.join('?' for _ in batch)})")
            + lock,
            (user_id, *batch),
        )
        gone += [carried[int(i)] for i, status in cursor.fetchall() if status == "forgotten"]
    for text in gone:
        if call_id is not None:
            where, where_params, assignments, set_params = ledger_sql(hot, text)
            cursor.execute(
                hot.sql(f"UPDATE model_calls SET {assignments} WHERE id = ? AND {where}"),
                (*set_params, call_id, *where_params),
            )
        if len(text) >= SUBSTRING_MIN_CHARS:
            cursor.execute(hot.sql(quote_sql(hot).format(where="id = ?")), (text, FORGOTTEN_MARK, message_id, text))
    return bool(gone)


class ForgetSql(SqlBase):
    """Forget a message, or a user; say beforehand exactly what will change."""

    # -- one message ----------------------------------------------------------------------------

    def _forgettable(self, cursor: Any, user_id: str, conversation_id: int, message_id: int) -> Message:
        """The message to forget; on PostgreSQL its conversation and then the message are locked until commit."""
        hot = self._hot
        hot.owned(cursor, user_id, conversation_id, lock=True)
        if not hot.sqlite:  # a reply saved meanwhile reads it FOR SHARE (redact_new_turn): one of the two waits
            cursor.execute(hot.sql("SELECT id FROM messages WHERE id = ? FOR UPDATE"), (message_id,))
        found = hot.messages(cursor, "id = ? AND conversation_id = ?", (message_id, conversation_id), order="id")
        if not found:
            raise NotFound(f"Message {message_id} was not found in this conversation.")
        message = found[0]
        if message.status == "forgotten":
            raise InvalidInput(f"Message {message_id} was already forgotten ({message.error}).")
        return message

    def _turn_facts(self, cursor: Any, user_id: str, conversation_id: int, turn: int) -> tuple[PreferenceChange, ...]:
        hot = self._hot
        cursor.execute(
            hot.sql(
                "SELECT id, key, old_value, new_value, source, conversation_id, turn, call_id, undoes, created_at "
                "FROM preference_changes WHERE user_id = ? AND conversation_id = ? AND turn = ? ORDER BY id"
            ),
            (user_id, conversation_id, turn),
        )
        return tuple(
            PreferenceChange(id_, key, old, new, source, conv, turn_, call, undoes, hot.read_stamp(created))
            for id_, key, old, new, source, conv, turn_, call, undoes, created in cursor.fetchall()
        )

    def _count(self, cursor: Any, sql: str, params: Sequence[Any]) -> int:
        cursor.execute(self._hot.sql(sql), tuple(params))
        return int(cursor.fetchone()[0] or 0)

    def forget_plan(self, user_id: str, conversation_id: int, message_id: int) -> ForgetPlan:
        """What forgetting this message would change; reads counts only (indexed, no ledger row is loaded)."""
        with self._hot.transaction(write=False, snapshot=True) as cursor:
            message = self._forgettable(cursor, user_id, conversation_id, message_id)
            return self._plan_for(cursor, user_id, message)

    def forget_message(
        self, user_id: str, conversation_id: int, message_id: int, *, remove_facts: Sequence[int] = ()
    ) -> ForgetPlan:
        """Remove a message's text from everywhere the store holds it, in one transaction; returns what changed.

        The message stays as a tombstone (status "forgotten", empty text) so turn numbers stay put.
        Ledger rows keep everything but the text, which becomes FORGOTTEN_MARK. Summaries and entity
        notes from that turn on are removed (the memory rebuilds them on the next turn), and so is
        the turn's vector. Automatic facts from that turn are removed only when listed in `remove_facts`.
        """
        hot = self._hot
        now = utcnow()
        with hot.transaction(write=True) as cursor:
            message = self._forgettable(cursor, user_id, conversation_id, message_id)
            plan_before = self._plan_for(cursor, user_id, message)
            turn_facts = {change.id: change for change in plan_before.facts}
            unknown = [i for i in remove_facts if i not in turn_facts]
            if unknown:
                raise InvalidInput(f"Fact change {unknown[0]} was not saved from this message's turn.")
            title = self._title_from(cursor, message)
            where, where_params, assignments, set_params = ledger_sql(hot, message.content, title)
            cursor.execute(
                hot.sql(f"UPDATE model_calls SET {assignments} WHERE user_id = ? AND {where}"),
                (*set_params, user_id, *where_params),
            )
            cursor.execute(
                hot.sql("UPDATE messages SET content = '', status = 'forgotten', error = ?, tokens = 0 WHERE id = ?"),
                (forgotten_note(now), message.id),
            )
            if len(message.content) >= SUBSTRING_MIN_CHARS:  # a reply that repeats it word for word
                cursor.execute(
                    hot.sql(quote_sql(hot).format(where="conversation_id = ? AND id <> ?")),
                    (message.content, FORGOTTEN_MARK, conversation_id, message.id, message.content),
                )
            if title is not None:
                self._retitle(cursor, conversation_id, title, message.content)
            cursor.execute(
                hot.sql("UPDATE conversations SET token_total = token_total - ? WHERE id = ?"),
                (message.tokens, conversation_id),
            )
            cursor.execute(
                hot.sql("DELETE FROM summaries WHERE conversation_id = ? AND through_turn >= ?"),
                (conversation_id, message.turn),
            )
            cursor.execute(
                hot.sql("DELETE FROM entities WHERE conversation_id = ? AND turn >= ?"), (conversation_id, message.turn)
            )
            self._drop_turn_vector(cursor, conversation_id, message.turn)
            for change_id in remove_facts:
                self._drop_fact(cursor, user_id, turn_facts[change_id])
        self._hot.checkpoint()
        return replace(plan_before, forgotten_text=message.content)

    def _title_from(self, cursor: Any, message: Message) -> str | None:
        """The conversation's title when it was made from this message (as Chat.send makes it), else None."""
        if message.role != "user":
            return None
        cursor.execute(self._hot.sql("SELECT title FROM conversations WHERE id = ?"), (message.conversation_id,))
        row = cursor.fetchone()
        title = row[0] if row is not None else None
        return title if title is not None and _made_from(title, message.content) else None

    def _retitle(self, cursor: Any, conversation_id: int, title: str, forgotten: str) -> None:
        """Make the title again, the same way, from the first message of the user's that is left (or the default);
        a fork's "(fork at turn …)" stays."""
        hot = self._hot
        cursor.execute(
            hot.sql(
                "SELECT content FROM messages WHERE conversation_id = ? AND role = 'user' AND status <> 'forgotten' "
                "AND content <> '' ORDER BY seq LIMIT 1"
            ),
            (conversation_id,),
        )
        row = cursor.fetchone()
        made = (title_from_message(row[0]) if row is not None else "") or DEFAULT_TITLE
        title = made + title[len(title_from_message(forgotten)) :]
        cursor.execute(hot.sql("UPDATE conversations SET title = ? WHERE id = ?"), (title, conversation_id))

    def _plan_for(self, cursor: Any, user_id: str, message: Message) -> ForgetPlan:
        """What forgetting `message` changes, counted in the caller's transaction (so forget_message reports it)."""
        conversation_id = message.conversation_id
        title = self._title_from(cursor, message)
        where, params, _, _ = ledger_sql(self._hot, message.content, title)
        calls = self._count(
            cursor, f"SELECT COUNT(*) FROM model_calls WHERE user_id = ? AND {where}", [user_id, *params]
        )
        summaries = self._count(
            cursor,
            "SELECT COUNT(*) FROM summaries WHERE conversation_id = ? AND through_turn >= ?",
            (conversation_id, message.turn),
        )
        notes = self._count(
            cursor,
            "SELECT COUNT(*) FROM entities WHERE conversation_id = ? AND turn >= ?",
            (conversation_id, message.turn),
        )
        vectors = self._count(
            cursor,
            "SELECT COUNT(*) FROM turn_vectors WHERE conversation_id = ? AND turn = ?",
            (conversation_id, message.turn),
        ) + self._count(
            cursor,
            "SELECT COUNT(*) FROM turn_vector_blocks WHERE conversation_id = ? AND first_turn <= ? AND last_turn >= ?",
            (conversation_id, message.turn, message.turn),
        )
        facts = self._turn_facts(cursor, user_id, conversation_id, message.turn)
        quoted = 0
        if len(message.content) >= SUBSTRING_MIN_CHARS:
            quoted = self._count(
                cursor,
                "SELECT COUNT(*) FROM messages WHERE conversation_id = ? AND id <> ? "
                f"AND {_find(self._hot, 'content')} > 0",
                (conversation_id, message.id, message.content),
            )
        return ForgetPlan(
            message.id, message.turn, message.role, calls, summaries, notes, vectors, facts, quoted, title is not None
        )

    def _drop_turn_vector(self, cursor: Any, conversation_id: int, turn: int) -> None:
        """Remove one turn's vector: its loose row, or its slot in a sealed block (the block is rewritten)."""
        import numpy as np  # loaded on first use: only retrieval memory needs it

        hot = self._hot
        cursor.execute(
            hot.sql("DELETE FROM turn_vectors WHERE conversation_id = ? AND turn = ?"), (conversation_id, turn)
        )
        cursor.execute(
            hot.sql(
                "SELECT id, turns, vectors FROM turn_vector_blocks "
                "WHERE conversation_id = ? AND first_turn <= ? AND last_turn >= ?"
            ),
            (conversation_id, turn, turn),
        )
        for block_id, packed_turns, packed_vectors in cursor.fetchall():
            turns = np.frombuffer(bytes(packed_turns), dtype=np.int32)
            vectors = np.frombuffer(bytes(packed_vectors), dtype=VECTOR_DTYPE).reshape(len(turns), -1)
            keep = turns != turn
            cursor.execute(
                hot.sql("UPDATE turn_vector_blocks SET turns = ?, vectors = ? WHERE id = ?"),
                (turns[keep].tobytes(), vectors[keep].tobytes(), block_id),
            )

    def _drop_fact(self, cursor: Any, user_id: str, change: PreferenceChange) -> None:
        """Remove an automatic fact from the forgotten turn: its history, and the preference if it still holds it."""
        hot = self._hot
        cursor.execute(
            hot.sql("DELETE FROM preferences WHERE user_id = ? AND key = ? AND value = ?"),
            (user_id, change.key, change.new_value or ""),
        )
        cursor.execute(hot.sql("DELETE FROM preference_changes WHERE id = ? AND user_id = ?"), (change.id, user_id))

    # -- everything about one user --------------------------------------------------------------

    def user_data(self, user_id: str) -> UserData:
        """How many rows of each kind this user owns (what forget_user would delete)."""
        with self._hot.transaction(write=False, snapshot=True) as cursor:
            return self._user_data(cursor, user_id)

    def _user_data(self, cursor: Any, user_id: str) -> UserData:
        def rows(table: str) -> int:
            return self._count(cursor, f"SELECT COUNT(*) FROM {table} WHERE user_id = ?", (user_id,))

        vectors = rows("turn_vectors") + self._count(
            cursor,
            "SELECT COALESCE(SUM(last_turn - first_turn + 1), 0) FROM turn_vector_blocks WHERE user_id = ?",
            (user_id,),
        )
        return UserData(
            conversations=rows("conversations"),
            messages=self._count(  # the conversations keep this count: no pass over the messages
                cursor, "SELECT COALESCE(SUM(message_count), 0) FROM conversations WHERE user_id = ?", (user_id,)
            ),
            model_calls=rows("model_calls"),
            summaries=rows("summaries"),
            preferences=rows("preferences"),
            preference_changes=rows("preference_changes"),
            vectors=vectors,
            entity_notes=rows("entities"),
        )

    def forget_user(self, user_id: str) -> UserData:
        """Delete every row of this user, and only this user, in one transaction; returns what was deleted."""
        if not user_id:
            raise InvalidInput("Say whose data to forget.")
        with self._hot.transaction(write=True) as cursor:
            deleted = self._user_data(cursor, user_id)
            for table in USER_TABLES:
                cursor.execute(self._hot.sql(f"DELETE FROM {table} WHERE user_id = ?"), (user_id,))
        self._hot.checkpoint()
        return deleted

    # -- retention ----------------------------------------------------------------------------------

    def expired(self, older_than: datetime) -> list[Expired]:
        """Per user, what retention would delete: conversations not updated since `older_than`, and ledger rows
        made before it (in conversations that stay). Counts only."""
        with self._hot.transaction(write=False, snapshot=True) as cursor:
            return self._expired_in(cursor, self._hot.stamp(older_than))

    def delete_expired(self, older_than: datetime) -> list[Expired]:
        """Delete what `expired` counts, for every user, in one transaction; returns what was deleted."""
        hot = self._hot
        cutoff = hot.stamp(older_than)
        with hot.transaction(write=True) as cursor:
            report = self._expired_in(cursor, cutoff)
            idle = "SELECT id FROM conversations WHERE updated_at < ?"
            cursor.execute(
                hot.sql(f"DELETE FROM model_calls WHERE created_at < ? OR conversation_id IN ({idle})"),
                (
                    cutoff,
                    cutoff,
                ),
            )
            for table in ("turn_vector_blocks", "turn_vectors", "entities", "summaries", "messages"):
                cursor.execute(hot.sql(f"DELETE FROM {table} WHERE conversation_id IN ({idle})"), (cutoff,))
            cursor.execute(hot.sql("DELETE FROM conversations WHERE updated_at < ?"), (cutoff,))
        hot.checkpoint()
        return report

    def _expired_in(self, cursor: Any, cutoff: Any) -> list[Expired]:
        hot = self._hot
        cursor.execute(
            hot.sql("SELECT user_id, COUNT(*) FROM conversations WHERE updated_at < ? GROUP BY user_id"), (cutoff,)
        )
        idle = dict(cursor.fetchall())
        cursor.execute(
            hot.sql(
                "SELECT m.user_id, COUNT(*) FROM model_calls m LEFT JOIN conversations c ON c.id = m.conversation_id "
                "WHERE m.created_at < ? AND (c.id IS NULL OR c.updated_at >= ?) GROUP BY m.user_id"
            ),
            (cutoff, cutoff),
        )
        old_calls = dict(cursor.fetchall())
        users = sorted(set(idle) | set(old_calls))
        return [Expired(u, int(idle.get(u, 0)), int(old_calls.get(u, 0))) for u in users]
